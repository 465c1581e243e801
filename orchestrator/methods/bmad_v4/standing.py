"""Where a BMad v4 project and its stories stand, read from the files alone.

Used before anything runs: preflight (can this project be driven, with these agents?), the
stage each story would start at, and the rows `status` prints. Starting is never destructive:
a story file whose Status cannot be read as a workflow state is not started at all, because
starting it at SM would re-draft a story that may be finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from orchestrator.methods.base import UNKNOWN, StartAt, StoryStanding
from orchestrator.methods.bmad_v4 import activation
from orchestrator.methods.bmad_v4.gates import newest_gate
from orchestrator.methods.bmad_v4.names import find_story_file
from orchestrator.methods.bmad_v4.paths import (
    CONFIG_FILE,
    MANIFEST_FILE,
    BmadConfigError,
    BmadPaths,
    installed_version,
    version_tuple,
)
from orchestrator.methods.bmad_v4.status import WorkflowState, nested_states, read_story_status
from orchestrator.methods.bmad_v4.text import read_text
from orchestrator.stages import StageName

START_FOR_STATE: dict[str, StartAt] = {
    WorkflowState.DRAFT: "po",
    WorkflowState.APPROVED: "dev",
    WorkflowState.IN_PROGRESS: "dev",
    WorkflowState.BLOCKED: "dev",
    WorkflowState.REVIEW: "qa",
    WorkflowState.DONE: "done",
}
# How far along each state is: a Status note further along than the story's own means the agent
# moved the wrong one.
PROGRESS = {
    WorkflowState.DRAFT: 0,
    WorkflowState.APPROVED: 1,
    WorkflowState.IN_PROGRESS: 2,
    WorkflowState.BLOCKED: 2,
    WorkflowState.REVIEW: 3,
    WorkflowState.DONE: 4,
}
MIN_VERSION = (4, 39, 0)  # QA gate files, qa.qaLocation and *review-qa arrived in 4.39.0
AGENT_COMMANDS = ("sm", "po", "dev", "qa")
INSTALL_HINT = "npx bmad-method@4.44.3 install --full --directory . --ide claude-code"


def story_standing(
    paths: BmadPaths, story_id: str, *, start_at: StartAt | None = None
) -> StoryStanding:
    """Where `story_id` stands and where a run would start it (`start_at` overrides)."""
    path = find_story_file(paths.stories, story_id)
    gate = newest_gate(paths, story_id)
    gate_file = paths.relative(gate.path) if gate is not None else None
    verdict = gate.value if gate is not None else None
    if path is None:
        return StoryStanding(story_id, None, None, None, gate_file, verdict, start_at or "sm")
    file = paths.relative(path)
    try:
        status = read_story_status(read_text(path))
    except (OSError, UnicodeDecodeError) as exc:
        if start_at is not None:  # the user said where it starts: the file is not consulted
            return StoryStanding(story_id, file, None, UNKNOWN, gate_file, verdict, start_at)
        reason = (
            f"{file} cannot be read ({type(exc).__name__}); not started. Fix the file, or run "
            f"with --only {story_id} --start-at sm|po|dev|qa"
        )
        return StoryStanding(story_id, file, None, UNKNOWN, gate_file, verdict, None, reason)
    if start_at is not None:
        return StoryStanding(story_id, file, status.raw, status.state, gate_file, verdict, start_at)
    if status.state == UNKNOWN:
        said = (
            f"its Status {status.raw!r} is not a workflow state (or its declarations disagree)"
            if status.raw is not None
            else "it declares no Status"
        )
        reason = (
            f"{file}: {said}; not started, so nothing is overwritten. Set its Status to Draft, "
            f"Approved, InProgress, Review or Done, or run with --only {story_id} --start-at "
            "sm|po|dev|qa"
        )
        return StoryStanding(story_id, file, status.raw, UNKNOWN, gate_file, verdict, None, reason)
    ahead = PROGRESS[status.state]  # a note behind the story's Status is merely stale
    notes = [
        raw for state, raw in nested_states(read_text(path)).items() if PROGRESS[state] > ahead
    ]
    if notes:
        reason = (
            f"{file}: its Status is {status.raw!r} but a Status further down (in the Dev Agent "
            f"Record?) says {', '.join(map(repr, notes))}: the declarations disagree; not "
            "started, so nothing is overwritten. Make them agree, or run with --only "
            f"{story_id} --start-at sm|po|dev|qa"
        )
        return StoryStanding(story_id, file, status.raw, UNKNOWN, gate_file, verdict, None, reason)
    start = START_FOR_STATE[status.state]
    return StoryStanding(story_id, file, status.raw, status.state, gate_file, verdict, start)


def project_checks(
    project: Path, *, agents: Mapping[StageName, str] = MappingProxyType({})
) -> tuple[list[str], list[str]]:
    """(problems that stop a run, warnings) for a BMad v4 project.

    `agents` names the CLI (profile) of each stage: the files that CLI needs to call up the
    stage's BMad agent must exist, or the stage would only show up as stalled.
    """
    if not (project / CONFIG_FILE).exists():
        if any((project / folder).is_dir() for folder in ("_bmad", "bmad/bmm", ".bmad/bmm")):
            return [
                f"{project} is a BMad v6 project (_bmad/), not v4: set `method: bmad-v6` (or "
                "bmad-v6-build) in epic.yaml, or leave `method:` out to have it detected"
            ], []
        return [
            f"{project} has no {CONFIG_FILE}: it is not a BMad v4 project. Install BMad there "
            f"({INSTALL_HINT}) or point `project:` at the folder that holds .bmad-core/"
        ], []
    try:
        paths = BmadPaths.load(project)
    except BmadConfigError as exc:
        return [str(exc)], []
    problems: list[str] = []
    warnings: list[str] = []
    if paths.stories.exists() and not paths.stories.is_dir():
        problems.append(f"stories location {paths.stories} is not a folder")
    version = installed_version(project)
    parsed = version_tuple(version) if version else None
    if version is None:
        warnings.append(
            f"cannot tell which BMad version is installed (no readable {MANIFEST_FILE}); "
            "QA gate files and *review-qa need 4.39.0 or newer"
        )
    elif parsed is None or parsed < MIN_VERSION:
        problems.append(
            f"BMad {version} is installed ({MANIFEST_FILE}); this orchestrator needs 4.39.0 "
            f"or newer (QA gate files, qa.qaLocation, *review-qa). Upgrade: {INSTALL_HINT}"
        )
    missing: dict[str, list[str]] = {}
    for stage, profile in agents.items():
        if profile in activation.IDE and (
            gap := activation.missing_for(profile, project, paths, stage)
        ):
            missing.setdefault(profile, []).append(gap)
    for profile, gaps in missing.items():
        problems.append(
            f"the {profile} agent cannot call up the BMad agents: {'; '.join(gaps)}. Install "
            f"them with: {activation.install_hint(profile)}"
        )
    warnings += _document_warnings(paths)
    return problems, warnings


def _document_warnings(paths: BmadPaths) -> list[str]:
    """The PRD, architecture and devLoadAlwaysFiles the agents are told to read, if missing."""
    config = paths.config
    warnings = []
    for key, file_key, folder_key in (
        ("prd", "prdFile", "prdShardedLocation"),
        ("architecture", "architectureFile", "architectureShardedLocation"),
    ):
        section = config.get(key)
        if not isinstance(section, dict):
            continue
        sharded = bool(section.get(f"{key}Sharded"))
        where = section.get(folder_key if sharded else file_key)
        if isinstance(where, str) and not (paths.root / where).exists():
            warnings.append(
                f"core-config {key}.{folder_key if sharded else file_key}: {where} does not "
                "exist; the agents are told to read it"
            )
    always = config.get("devLoadAlwaysFiles")
    for entry in always if isinstance(always, list) else []:
        if isinstance(entry, str) and not (paths.root / entry).exists():
            warnings.append(
                f"core-config devLoadAlwaysFiles: {entry} does not exist; Dev is told to read it"
            )
    return warnings
