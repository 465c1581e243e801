"""BMad v6 behind the `Method` interface: the classic cycle and build-auto.

The orchestrator owns the sprint-status moves the skills do not make (build-auto makes none;
the classic skills make theirs, and the orchestrator makes them again after each outcome, so
a skill that skipped its sync cannot stall the file): never backwards, except code-review's
own `review -> in-progress`, and epics lifted on their first story and closed with their last.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from orchestrator.methods.base import (
    UNKNOWN,
    Baseline,
    Rehearsal,
    StageOutput,
    StageRequest,
    StartAt,
    StoryStanding,
)
from orchestrator.methods.bmad_v6 import conventions as conv
from orchestrator.methods.bmad_v6 import sprint_merge
from orchestrator.methods.bmad_v6.artifacts import (
    read_spec,
    set_story_status,
    stories_entries,
    stories_ids,
    story_status,
)
from orchestrator.methods.bmad_v6.layout import (
    BUILD_SINCE,
    BUILD_SKILL,
    CLASSIC_SKILLS,
    COMMANDS_DIR,
    INSTALL_HINT,
    MANIFEST_FILE,
    SKILL_DIRS,
    SUPPORTED,
    Flavour,
    V6Layout,
    version_tuple,
)
from orchestrator.methods.bmad_v6.sprint import (
    SprintStatus,
    SprintStatusError,
    move,
    read_sprint,
)
from orchestrator.methods.bmad_v6.sprint_merge import rank
from orchestrator.stages import StageName

CLASSIC_STAGES: tuple[StageName, ...] = ("sm", "dev", "qa")
BUILD_STAGES: tuple[StageName, ...] = ("dev", "qa")
# Statuses -> where a run starts the story (classic story file; build spec).
CLASSIC_START: Mapping[str, StartAt] = {
    "backlog": "sm",
    "ready-for-dev": "dev",
    "drafted": "dev",
    "in-progress": "dev",
    "review": "qa",
    "done": "done",
}
BUILD_START: Mapping[str, StartAt] = {
    "draft": "dev",
    "ready-for-dev": "dev",
    "in-progress": "dev",
    "in-review": "dev",
    "done": "done",
}
INSTALL_PATHS = ("_bmad", ".claude", ".agents", ".gemini", ".codex")


class BmadV6:
    """The BMad Method v6 (`_bmad/`): classic (SM -> Dev -> QA) or build (build-auto)."""

    def __init__(self, flavour: Flavour) -> None:
        self.flavour: Flavour = flavour
        self.name = "bmad-v6" if flavour == "classic" else "bmad-v6-build"
        self.stages: tuple[StageName, ...] = (
            CLASSIC_STAGES if flavour == "classic" else BUILD_STAGES
        )
        self.commits_itself = flavour == "build"  # build-auto commits, and wants a clean tree

    def check_prompt(self, template: str) -> None:
        """Raise ValueError if a user's prompt template would not render at a stage."""
        conv.check_template(template, conv.SAMPLE_FIELDS)

    def open(self, root: Path) -> BmadV6Project:
        """Bind to the project at `root`; its configuration is read now."""
        return BmadV6Project(V6Layout.load(root), self.flavour)


class BmadV6Project:
    """One BMad v6 project (see `methods.base.Project` for what each method is for)."""

    def __init__(self, layout: V6Layout, flavour: Flavour) -> None:
        self.layout = layout
        self.flavour: Flavour = flavour
        self.root = layout.root
        self.conventions = conv.Conventions(layout, flavour, self.story_key)

    # ------------------------------------------------------------------ sprint-status
    def sprint_status(self) -> SprintStatus | None:
        """The project's sprint-status, or None when it has none that can be read."""
        try:
            return read_sprint(self.layout.sprint_status)
        except (OSError, SprintStatusError):
            return None

    def sprint_problem(self) -> str | None:
        """Why the project's sprint-status.yaml cannot be read (None: it can, or there is none):
        where a story stands is then unknown, never a guess from a file that was not read."""
        path = self.layout.sprint_status
        if not os.path.lexists(path):
            return None
        try:
            read_sprint(path)
        except (OSError, SprintStatusError) as exc:
            return f"{self.layout.relative(path)} cannot be read ({exc}): fix it, then run again"
        return None

    def story_key(self, story_id: str) -> str:
        """The sprint-status key of `story_id` (the id itself when the file has none)."""
        sprint = self.sprint_status()
        key = sprint.story_key(story_id) if sprint is not None else None
        return key or story_id.replace(".", "-")

    def move_story(self, story_id: str, value: str, *, back_from: str | None = None) -> None:
        """Move the story (and lift or close its epic) in sprint-status, if the file has it."""
        sprint = self.sprint_status()
        key = sprint.story_key(story_id) if sprint is not None else None
        if sprint is None or key is None:
            return
        path = self.layout.sprint_status
        move(path, key, value, back_from=back_from)
        epic = sprint.epic_of(key)
        if epic is None:
            return
        move(path, epic, "in-progress")
        after = self.sprint_status()
        if after is not None and all(
            rank(k, after.entries.get(k, "")) == rank(k, "done") for k in after.epic_stories(epic)
        ):
            move(path, epic, "done")

    # ------------------------------------------------------------------ Project
    def describe(self) -> list[str]:
        """Where v6 reads and writes, for `--dry-run`."""
        return [
            f"BMad v6 {self.layout.version or '(version unknown)'} ({self.flavour}); "
            f"implementation artifacts: {self.layout.implementation}",
            f"sprint status: {self.layout.sprint_status}",
        ]

    def story_file(self, story_id: str) -> Path | None:
        """The story file (classic) or its newest spec (build)."""
        return self.conventions.story_file(story_id)

    def prompt_fields(self, request: StageRequest) -> dict[str, str]:
        """The values a prompt template may use."""
        return self.conventions.fields(request)

    def prompt(self, request: StageRequest, template: str | None = None) -> str:
        """The user's template filled in, or the v6 prompt of the stage."""
        if template:
            return self.conventions.render(template, request)
        return self.conventions.prompt(request)

    def nudge(self, request: StageRequest) -> str:
        """What to type when the agent stopped (at a menu, say) without its output."""
        return self.conventions.nudge(request)

    def watch_dirs(self, request: StageRequest) -> list[Path]:
        """The folders the stage's output lands in."""
        return self.conventions.watch_dirs(request)

    def baseline(self, request: StageRequest) -> Baseline:
        """The story's status (or the spec's) before the stage."""
        return self.conventions.baseline(request).as_json()

    def check(
        self, request: StageRequest, *, since_ns: int, baseline: Baseline
    ) -> StageOutput | None:
        """The stage's outcome once its file says it is done."""
        return self.conventions.check(
            request, since_ns=since_ns, baseline=conv.V6Baseline.from_json(baseline)
        )

    def before_stage(self, request: StageRequest) -> None:
        """Dev starts: the story is in progress. Not for build-auto, which needs a clean tree
        to start: its moves are made after it ran, and committed with the stage."""
        if request.stage == "dev" and self.flavour == "classic":
            self.move_story(request.story_id, "in-progress", back_from="review")

    def after_stage(self, request: StageRequest, output: StageOutput) -> None:
        """The sprint-status move each outcome means."""
        moves = {
            "drafted": ("ready-for-dev", None),
            "implemented": ("review", None),
            "complete": ("review", None),
            "FAIL": ("in-progress", "review"),
        }
        if output.outcome in moves:
            value, back_from = moves[output.outcome]
            self.move_story(request.story_id, value, back_from=back_from)

    def finish_story(self, story_file: Path) -> None:
        """Passed: the story (file and sprint-status) is done, and its epic if it was the last."""
        if self.flavour == "classic":
            set_story_status(story_file, "done")
        story_id = story_file.stem.removeprefix("spec-")
        self.move_story(self.story_key(story_id), "done")

    def known_stories(self) -> list[str]:
        """The stories sprint-status.yaml tracks, in its order; build-auto's without one: the
        ids of its specs' stories.yaml files."""
        sprint = self.sprint_status()
        if sprint is not None:
            return sprint.story_ids()
        return stories_ids(self.layout.output / "specs") if self.flavour == "build" else []

    def standing(self, story_id: str, *, start_at: StartAt | None = None) -> StoryStanding:
        """Where the story stands (from its file), never destructively."""
        found = self.story_file(story_id)
        rel = self.layout.relative(found) if found else None
        sprint = self.sprint_status()
        key = sprint.story_key(story_id) if sprint is not None else None
        tracked = sprint.entries.get(key) if sprint is not None and key else None
        if self.flavour == "build":
            folders = stories_entries(self.layout.output / "specs", story_id)
            if len(folders) > 1:
                where = ", ".join(self.layout.relative(e.folder) for e in folders)
                reason = (
                    f"story {story_id} is listed in more than one stories.yaml ({where}): "
                    "give it one id per epic, or name the story by its sprint key"
                )
                return StoryStanding(story_id, None, None, UNKNOWN, None, None, None, reason)
            spec = read_spec(found) if found else None
            raw = spec.status if spec else None
            if spec is not None and raw == "blocked":
                reason = (
                    f"build-auto blocked it ({spec.blocking or 'no condition named'}); "
                    f"resolve that, then delete {rel} to retry"
                )
                return StoryStanding(story_id, rel, raw, raw, None, None, None, reason)
            start = BUILD_START.get(raw or "draft")
            if spec is not None and raw == "done" and spec.followup and spec.results < 2:
                start = "qa"
        else:
            raw = None
            if found is not None:
                try:
                    raw = story_status(found.read_text(errors="replace"))
                except OSError:
                    raw = None
            if raw is None and (problem := self.sprint_problem()) is not None:
                return StoryStanding(story_id, rel, None, UNKNOWN, None, None, None, problem)
            start = CLASSIC_START.get(raw or tracked or "backlog")
        if start is None:
            reason = (
                f"status {raw!r} of {rel} is not one v6 uses; set it to one of "
                f"{', '.join(CLASSIC_START if self.flavour == 'classic' else BUILD_START)}"
            )
            return StoryStanding(story_id, rel, raw, UNKNOWN, None, None, None, reason)
        if start_at is not None and start != "done":
            order = ("sm", "po", "dev", "qa")
            later = [s for s in order[order.index(start_at) :] if s in self._stages()]
            start = later[0] if later else start_at
        return StoryStanding(story_id, rel, raw or tracked, raw or tracked, None, None, start)

    def preflight(self, *, agents: Mapping[StageName, str]) -> tuple[list[str], list[str]]:
        """Version, skills for each stage's CLI, and (classic) sprint-status.yaml."""
        problems: list[str] = []
        warnings: list[str] = []
        version = self.layout.version
        parsed = version_tuple(version or "")
        low, high = SUPPORTED
        if version is None:
            problems.append(
                f"cannot tell which BMad v6 is installed: no readable {MANIFEST_FILE} with "
                f"installation.version. Reinstall: {INSTALL_HINT}"
            )
        elif parsed is None or not low <= parsed < high:
            problems.append(
                f"BMad {version} is installed ({MANIFEST_FILE}); this orchestrator drives v6 "
                f"from 6.0.0 up to 7 (not included)"
            )
        elif self.flavour == "build" and parsed < BUILD_SINCE:
            problems.append(
                f"bmad-v6-build needs bmad-build-auto (6.11.0 or newer); {version} is installed. "
                "Use method: bmad-v6 (the classic cycle) or upgrade BMad"
            )
        skills = CLASSIC_SKILLS if self.flavour == "classic" else (BUILD_SKILL,)
        for profile in sorted(set(agents.values())):
            if profile in ("simulated", "generic"):
                continue
            if profile not in SKILL_DIRS:
                problems.append(
                    f"the {profile} agent has no known way to call BMad v6 skills; use claude, "
                    "codex or gemini for a v6 project"
                )
                continue
            missing = [s for s in skills if not self._has_skill(profile, s, parsed)]
            if missing:
                where = " or ".join(SKILL_DIRS[profile])
                problems.append(
                    f"the {profile} agent cannot call {', '.join(missing)}: not installed in "
                    f"{where}. Install them with: {INSTALL_HINT.replace('claude-code', profile)}"
                )
        real = [name for name in agents.values() if name not in ("simulated", "generic")]
        if self.flavour == "build" and real and shutil.which("uv") is None:
            problems.append(
                f"uv is not installed: {BUILD_SKILL} renders itself with `uv run` and halts "
                "without it. Install it (curl -LsSf https://astral.sh/uv/install.sh | sh, or "
                "brew install uv), or install BMad with the classic skills (--shims) and use "
                "method: bmad-v6"
            )
        if self.flavour == "classic" and not self.layout.sprint_status.is_file():
            problems.append(
                f"no {self.layout.relative(self.layout.sprint_status)}: the classic cycle "
                "tracks stories there. Run the sprint-planning skill first (/bmad-sprint-planning)"
            )
        elif self.flavour == "classic":
            try:
                read_sprint(self.layout.sprint_status)
            except (OSError, SprintStatusError) as exc:
                problems.append(f"the sprint status cannot be read: {exc}")
        return problems, warnings

    def _stages(self) -> tuple[StageName, ...]:
        return CLASSIC_STAGES if self.flavour == "classic" else BUILD_STAGES

    def _has_skill(self, profile: str, skill: str, version: tuple[int, int, int] | None) -> bool:
        if profile == "claude" and version is not None and version < (6, 1, 0):
            command = skill.replace("bmad-", "bmad-bmm-", 1)
            return (self.root / COMMANDS_DIR / f"{command}.md").is_file()
        return any(
            (self.root / folder / skill / "SKILL.md").is_file() for folder in SKILL_DIRS[profile]
        )

    def agent_name(self, stage: StageName) -> str:
        """v6 calls skills, not named agents: there is no `--agent` name."""
        return ""

    def rehearsal(self) -> Rehearsal:
        """The simulated agent's v6 file work."""
        from orchestrator.methods.bmad_v6.rehearsal import BmadV6Rehearsal

        return BmadV6Rehearsal(self)

    def merge_drivers(self) -> dict[str, list[str]]:
        """sprint-status.yaml: parallel stories each move their own line (see `sprint_merge`);
        deferred-work.md: code-review only appends to it (git's union merge)."""
        script = Path(sprint_merge.__file__).resolve()
        return {
            self.layout.sprint_status.name: [sys.executable, "-I", "-S", str(script)],
            self.layout.deferred_work.name: [],
        }

    def install_paths(self) -> list[str]:
        """`_bmad/` and the skills (or 6.0.x commands) v6 installs for each CLI."""
        return list(INSTALL_PATHS)
