"""BMad v4 behind the `Method` interface: one project's files, read and written as v4 does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from orchestrator.methods.base import (
    Baseline,
    Rehearsal,
    StageOutput,
    StageRequest,
    StartAt,
    StoryStanding,
    check_template,
)
from orchestrator.methods.bmad_v4 import activation, conventions, listing
from orchestrator.methods.bmad_v4.names import find_story_file
from orchestrator.methods.bmad_v4.paths import BmadPaths
from orchestrator.methods.bmad_v4.po import add_change_log_row
from orchestrator.methods.bmad_v4.rehearsal import BmadV4Rehearsal
from orchestrator.methods.bmad_v4.standing import project_checks, story_standing
from orchestrator.methods.bmad_v4.status import Status, WorkflowState, read_story_status, set_status
from orchestrator.methods.bmad_v4.text import read_text
from orchestrator.stages import STAGES, StageName

AUTHOR = "bmad-orchestrator"


class BmadV4:
    """The BMad Method v4 (`.bmad-core/`): SM -> PO -> Dev -> QA with gate files."""

    name = "bmad-v4"
    stages: tuple[StageName, ...] = STAGES
    commits_itself = False

    def check_prompt(self, template: str) -> None:
        """Raise ValueError if a user's prompt template would not render at a stage."""
        check_template(template, conventions.SAMPLE_FIELDS)

    def open(self, root: Path) -> BmadV4Project:
        """Bind to the project at `root`; its core-config is read now."""
        return BmadV4Project(BmadPaths.load(root))


class BmadV4Project:
    """One BMad v4 project (see `methods.base.Project` for what each method is for)."""

    def __init__(self, paths: BmadPaths) -> None:
        self.paths = paths
        self.root = paths.root

    def describe(self) -> list[str]:
        """Where v4 reads and writes, for `--dry-run`."""
        return [f"stories dir: {self.paths.stories}   gates dir: {self.paths.gates}"]

    def story_file(self, story_id: str) -> Path | None:
        """The story's file in the stories folder, if it has one."""
        return find_story_file(self.paths.stories, story_id)

    def prompt_fields(self, request: StageRequest) -> dict[str, str]:
        """The values a prompt template may use."""
        return conventions.prompt_fields(request, self.paths)

    def prompt(self, request: StageRequest, template: str | None = None) -> str:
        """The user's template filled in, or the v4 prompt of the stage."""
        if template:
            return conventions.render_prompt(template, request, self.paths)
        return conventions.default_prompt(request, self.paths)

    def nudge(self, request: StageRequest) -> str:
        """What to type when the agent stopped without its output."""
        return conventions.nudge_prompt(request, self.paths)

    def watch_dirs(self, request: StageRequest) -> list[Path]:
        """The folders the stage's output lands in."""
        return conventions.watch_dirs(request, self.paths)

    def baseline(self, request: StageRequest) -> Baseline:
        """The story, gates and PO reports as they are before the stage."""
        return conventions.take_baseline(request, self.paths).as_json()

    def check(
        self, request: StageRequest, *, since_ns: int, baseline: Baseline
    ) -> StageOutput | None:
        """The stage's outcome once its output changed and says it is done."""
        return conventions.check_stage_output(
            request,
            self.paths,
            since_ns=since_ns,
            baseline=conventions.StageBaseline.from_json(baseline),
        )

    def before_stage(self, request: StageRequest) -> None:
        """InProgress before a fix or merge round, so the last round's Status cannot count."""
        # BMad: a FAIL gate returns the story to InProgress. The orchestrator owns that move, so
        # a stale "Ready for Review" from the last round cannot complete this one.
        if (request.fix_round or request.conflicts) and request.story_file is not None:
            set_status(request.story_file, Status.IN_PROGRESS.value)

    def after_stage(self, request: StageRequest, output: StageOutput) -> None:
        """After a PO GO: Status Approved and a Change Log row naming the report."""
        story = output.story_file or request.story_file
        if request.stage != "po" or output.outcome != "approved" or story is None:
            return
        # BMad's PO only reports GO; moving Draft -> Approved is the orchestrator's job.
        if read_story_status(read_text(story)).state != WorkflowState.APPROVED:
            set_status(story, Status.APPROVED.value)
        if output.report is not None:
            report = self.paths.relative(output.report)
            add_change_log_row(story, f"PO validation {output.detail} ({report}); Approved", AUTHOR)

    def finish_story(self, story_file: Path) -> None:
        """QA passed: Status Done (no BMad agent makes that move)."""
        # QA passed: Done is the story owner's move; no BMad agent makes it.
        set_status(story_file, Status.DONE.value)

    def known_stories(self) -> list[str]:
        """Its story files and the `Story N.M` headings of its epics, in order."""
        return listing.known_stories(self.paths)

    def standing(self, story_id: str, *, start_at: StartAt | None = None) -> StoryStanding:
        """Where the story stands, and where a run would start it."""
        return story_standing(self.paths, story_id, start_at=start_at)

    def preflight(self, *, agents: Mapping[StageName, str]) -> tuple[list[str], list[str]]:
        """Problems and warnings for this project and the CLI of each stage."""
        return project_checks(self.root, agents=agents)

    def agent_name(self, stage: StageName) -> str:
        """opencode's key for the stage's agent (`sm`, or `bmad-sm`)."""
        return activation.agent_name(self.root, stage)

    def rehearsal(self) -> Rehearsal:
        """The simulated agent's v4 file work."""
        return BmadV4Rehearsal(self.paths)

    def merge_drivers(self) -> dict[str, list[str]]:
        """None: v4 stories each write their own files."""
        return {}

    def install_paths(self) -> list[str]:
        """`.bmad-core/`, expansion packs, and the agent commands v4 installs for each CLI."""
        return list(conventions.INSTALL_PATHS)
