"""The `Method` interface: everything the story graph and the runner ask of a BMad method.

A method knows one BMad version's files: where stories and QA output live, what each stage is
told, when a stage's output is valid, which Status moves the orchestrator owns, where a story
stands before a run, and what the simulated agent writes in a rehearsal. Nothing outside
`orchestrator/methods/` knows a BMad file name or Status word.

```
Method            one BMad version (bmad-v4), with its stages
└── open(root) -> Project     bound to one project (its config read)
                  ├── prompts and nudges per stage
                  ├── baseline / check / watch_dirs: when a stage's output is valid
                  ├── before_stage / after_stage / finish_story: the moves the orchestrator owns
                  ├── standing / preflight: before anything runs
                  └── rehearsal(): the file work of the simulated agent
```
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from orchestrator.stages import StageName, StartAt

UNKNOWN: Final = "unknown"
PoConditional = Literal["approve", "reject"]
Baseline = Mapping[str, Any]  # a method's own record of a stage's files, JSON-able


@dataclass(frozen=True)
class StageRequest:
    """One stage run for one story; `revision` and `fix_round` pick the follow-up prompts."""

    stage: StageName
    story_id: str
    story_file: Path | None = None
    revision: bool = False  # SM again after a PO NO-GO
    fix_round: bool = False  # Dev again after a QA FAIL
    findings: Path | None = None  # the PO report an SM revision works from
    po_conditional: PoConditional = "approve"
    # Dev resolving a merge of `merge_from` (the integration branch) that conflicts in these files
    conflicts: tuple[str, ...] = ()
    merge_from: str | None = None
    # How the agent CLI calls up a BMad agent: slash | mention | agent | file (see agents.clis)
    activation: str = "slash"
    note: str | None = None  # what a person answered at a gate, for this stage to act on


@dataclass(frozen=True)
class StageOutput:
    """A stage's outcome, and when the file that says so was written (`written_ns`).

    `invalid` says why an output that is there cannot be used (a QA verdict that is none of the
    four): the attempt then ends as `invalid_output` instead of waiting for more.
    """

    outcome: str
    story_file: Path | None
    detail: str = ""
    written_ns: int = 0
    invalid: str | None = None
    report: Path | None = None
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoryStanding:
    """One story before a run, as `status` shows it; `start` is None when a run would not start
    it (then `reason` says why and how to go on)."""

    story: str
    file: str | None
    status_raw: str | None
    state: str | None
    gate_file: str | None
    gate: str | None
    start: StartAt | None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The row of `status --json`."""
        return asdict(self)


def check_template(template: str, samples: Mapping[str, str]) -> None:
    """Raise ValueError if a prompt template would fail to render with these fields.

    Unknown `{field}`s are named; anything else `str.format` refuses (a format spec such as
    `{story_id:%}`, `{story_id.x}`, a lone brace) is found by rendering sample values now,
    not after three stages have run.
    """
    known = ", ".join("{" + f + "}" for f in samples)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        hint = "write a literal brace as {{ or }}"
        raise ValueError(f"cannot be rendered: {exc} ({hint})") from None
    for _, name, _, _ in parsed:
        if name is not None and name not in samples:
            raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
    try:
        template.format_map(samples)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot be rendered: {type(exc).__name__}: {exc}") from None


class RehearsalPaused(Exception):
    """The rehearsal stopped where the real workflow stops for a person (a numbered menu, a
    HALT); the message is what the agent asks. The next message it gets continues the work."""


class Rehearsal(Protocol):
    """What the simulated agent writes for each stage, in the method's own files.

    Each call returns the line the agent prints; a missing prerequisite (no story to validate)
    raises `FileNotFoundError` with a message, a stop for a person `RehearsalPaused`.
    """

    def draft(
        self, story_id: str, prompt: str, *, pieces: bool, partial: bool, in_steps: bool,
        pause: float,
    ) -> str:  # fmt: skip
        """SM: the story (or the revision the prompt asks for)."""
        ...

    def validate(self, story_id: str, prompt: str, *, go: bool, conditional: bool) -> str:
        """PO: the validation, GO or NO-GO."""
        ...

    def develop(
        self, story_id: str, prompt: str, *, blocked: bool, followup: bool, omit_result: bool
    ) -> str:
        """Dev: the implementation (or the fix round the prompt asks for), or Blocked.

        `followup` and `omit_result` are build-auto's: a follow-up review recommended, and the
        result section left out of the first write.
        """
        ...

    def review(
        self, story_id: str, prompt: str, *, verdict: str, gate_first: bool, pause: float
    ) -> str:
        """QA: the review with this verdict."""
        ...


class Project(Protocol):
    """A method bound to one project: what the story graph and the runner ask of BMad."""

    root: Path

    def describe(self) -> list[str]:
        """Lines for `--dry-run`: where the method reads and writes."""
        ...

    def story_file(self, story_id: str) -> Path | None:
        """The story's file, if it has one."""
        ...

    def prompt_fields(self, request: StageRequest) -> dict[str, str]:
        """The values a user's prompt template may use."""
        ...

    def prompt(self, request: StageRequest, template: str | None = None) -> str:
        """The stage's prompt: the user's template filled in, or the method's own."""
        ...

    def nudge(self, request: StageRequest) -> str:
        """What to type when the agent stopped (or asked) before its output was there."""
        ...

    def watch_dirs(self, request: StageRequest) -> list[Path]:
        """The folders whose changes can complete the stage."""
        ...

    def baseline(self, request: StageRequest) -> Baseline:
        """What the stage's files hold before it starts (JSON-able, kept on the session)."""
        ...

    def check(
        self, request: StageRequest, *, since_ns: int, baseline: Baseline
    ) -> StageOutput | None:
        """The stage's outcome if its output, changed since the stage began, says it is done."""
        ...

    def before_stage(self, request: StageRequest) -> None:
        """The Status move the orchestrator owns before a stage (InProgress before a fix)."""
        ...

    def after_stage(self, request: StageRequest, output: StageOutput) -> None:
        """The moves the orchestrator owns after an outcome (Approved after a PO GO)."""
        ...

    def finish_story(self, story_file: Path) -> None:
        """The move the orchestrator owns when QA passed (Done)."""
        ...

    def known_stories(self) -> list[str]:
        """The story ids the project names (its files, epics or sprint plan), in order."""
        ...

    def standing(self, story_id: str, *, start_at: StartAt | None = None) -> StoryStanding:
        """Where the story stands and where a run would start it (never destructively)."""
        ...

    def preflight(self, *, agents: Mapping[StageName, str]) -> tuple[list[str], list[str]]:
        """(problems that stop a run, warnings) for this project and the agent CLI (profile
        name) of each stage."""
        ...

    def agent_name(self, stage: StageName) -> str:
        """The CLI's name for the stage's agent where a CLI selects agents by name (`--agent`)."""
        ...

    def rehearsal(self) -> Rehearsal:
        """The simulated agent's file work for this project."""
        ...

    def merge_drivers(self) -> dict[str, list[str]]:
        """Files (by name) whose parallel edits the method can merge itself, and the program
        that does it (git's merge driver: called with BASE OURS THEIRS, writes OURS); an empty
        program is git's union merge, for files only ever appended to."""
        ...

    def install_paths(self) -> list[str]:
        """What the method's installer writes into a project (globs, relative to its root).

        A story's worktree gets the ones git does not track, or its agents would not find their
        commands.
        """
        ...


class Method(Protocol):
    """One BMad version: its name, its stages, and how to open a project of it."""

    name: str
    stages: tuple[StageName, ...]
    # Its agents commit their own work and need a clean tree to start: in a git repository
    # every story gets a worktree, even one at a time.
    commits_itself: bool

    def check_prompt(self, template: str) -> None:
        """Raise ValueError if a user's prompt template would not render at a stage."""
        ...

    def open(self, root: Path) -> Project:
        """Bind to the project at `root` (reads its config; raises `ProjectError`)."""
        ...
