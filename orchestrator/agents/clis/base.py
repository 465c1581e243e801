"""What each agent CLI adds to a session: hooks and ids at launch, usage records after it.

A CLI's turn-end and question signals reach the orchestrator as two files named in the
session's environment (`BMAD_TURN_END_FILE`, `BMAD_ATTENTION_FILE`); each CLI is told to write
them through its own hook or notify mechanism, installed for the one invocation (a flag, an
environment variable, or a file of ours) so the user's own settings are never edited.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from orchestrator.agents.clis.standin import StandIn
from orchestrator.agents.steering import hook_command
from orchestrator.agents.usage import ModelTokens

# Where an agent without usage records of its own on disk appends them, one JSON line per record
# (opencode through our plugin, the simulated agent itself); a file in the run's folder.
USAGE_VARIABLE = "BMAD_USAGE_FILE"

# How a BMad agent is activated in the CLI: its slash command (`/BMad:agents:sm`), a mention
# ("As sm, ..." with AGENTS.md), the CLI's agent option (`--agent sm`), or the agent file itself.
Activation = Literal["slash", "mention", "agent", "file"]

# Hook commands are constant text: the paths arrive through the session's environment. Each
# runs the relay, which keeps the payload (the last one wins) and, for the asking kinds, waits
# for the orchestrator's answer (see `orchestrator.agents.relay`).
TURN_END_HOOK = hook_command("turn-end")
ATTENTION_HOOK = hook_command("attention")
SIGNAL_HOOK = hook_command("signal")
ENDED_HOOK = hook_command("turn-ended")
SUBMITTED_HOOK = hook_command("submitted")


@dataclass(frozen=True)
class LaunchSpec:
    """What the runtime knows about a session as it starts it."""

    name: str  # the tmux session's name
    run_dir: Path  # owner-only folder for this run's per-session files
    cwd: Path
    session_id: str  # a fresh UUID, for CLIs that let the caller choose the session id
    agent: str = ""  # the CLI's name for the stage's BMad agent (for `--agent`)
    flags: tuple[str, ...] = ()  # the command the user configured, flags included


@dataclass
class Launch:
    """What a CLI adds to a session: arguments, environment, and files it reads.

    `files` are written owner-only before the start; `cwd_files` are files the CLI only reads
    from its working directory (no flag or variable points elsewhere), and `private_files`
    files it only accepts outside the state dir (absolute paths in folders of ours): both
    written before the start and removed when the session ends. `warnings` say what will not
    work in this session (a signal the CLI will not give), for the attempt's record.
    """

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)
    cwd_files: dict[Path, str] = field(default_factory=dict)
    private_files: dict[Path, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UsageQuery:
    """What a usage reader may use to find one session's records."""

    name: str  # the tmux session's name
    run_dir: Path  # where its launch files were written
    session_id: str
    cwd: Path
    started_ns: int
    turn_end: Mapping[str, Any] | None = None  # the last turn-end payload, if any
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass
class UsageRecord:
    """Tokens per model as a CLI recorded them, and dollars if the CLI reported them."""

    per_model: dict[str, ModelTokens]
    source: str
    usd: float | None = None


class CliSupport(Protocol):
    """One agent CLI's hooks and usage records."""

    name: str

    def launch(self, spec: LaunchSpec) -> Launch:
        """The arguments, environment and files that wire the CLI's signals for one session."""
        ...

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """The session's usage, or None when no record of it can be found."""
        ...

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """What a waiting hook prints so the agent goes on with `text` (a nudge, or the answer
        to its question), or None when the hook that wrote `payload` cannot steer."""
        ...


@dataclass(frozen=True)
class Dialog:
    """A first-run screen and the keys that accept it."""

    name: str
    pattern: re.Pattern[str]
    keys: tuple[str, ...]


class NoSupport:
    """A CLI the orchestrator knows nothing about: no hooks, no usage."""

    name = "none"

    def launch(self, spec: LaunchSpec) -> Launch:
        """Nothing to add."""
        return Launch()

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """Never known."""
        return None

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """No hooks to steer through."""
        return None


# What a usage reader reads of a CLI's record at most: a record is the CLI's or the repository's
# file, so a FIFO, a huge file or a huge line must not hang or swell the orchestrator.
MAX_RECORD_BYTES = 256 << 20
MAX_LINE_BYTES = 8 << 20
MAX_COUNT = 10**13  # tokens (or dollars) of one record beyond any real session


def json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file; a torn, foreign, nested-too-deep or overlong line is
    skipped, never fatal. Only a regular file is read (a FIFO is never waited on), and only its
    first `MAX_RECORD_BYTES`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        read = 0
        while read < MAX_RECORD_BYTES:
            line = handle.readline(MAX_LINE_BYTES)
            if not line:
                return
            read += len(line)
            if len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    read += len(rest)  # the rest of an overlong line, dropped as it is read
                read += len(rest)
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                yield value


def number(value: Any) -> int:
    """A token count as recorded: a missing one counts 0; a negative, fractional-infinite or
    absurd one makes the record unreadable (ValueError: the usage is unknown, never wrong)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0 or value > MAX_COUNT:
        raise ValueError(f"an impossible count in a usage record: {value!r}")
    return int(value)


def home(env: Mapping[str, str], variable: str, default: str) -> Path:
    """A CLI's data folder: its own variable, or `default` under HOME."""
    if env.get(variable):
        return Path(env[variable])
    return Path(env.get("HOME") or os.path.expanduser("~")) / default


@dataclass(frozen=True)
class CliSpec:
    """One agent CLI as the orchestrator drives it: command, screens, prompt, hooks, usage.

    Screen patterns are data because agent UIs change between versions.
    """

    name: str
    binary: str
    support: CliSupport
    ready: re.Pattern[str] | None = None
    busy: re.Pattern[str] | None = None  # on screen while the agent works: not ready then
    dialogs: tuple[Dialog, ...] = ()
    prompt_flag: tuple[str, ...] = ()  # the option before the prompt; empty: positional
    activation: Activation = "slash"
    agent_flag: tuple[str, ...] = ()
    dismiss_keys: tuple[str, ...] = ("Escape",)
    # On screen while a question (or permission) dialog is up: the keys wait until it is drawn.
    question: re.Pattern[str] | None = None
    # Whether a hook of the CLI's says when a typed prompt was submitted (`BMAD_SUBMIT_FILE`).
    submit_signal: bool = False
    # On screen when the CLI refuses the hooks we gave it (so turns will end on quiet).
    hooks_off: re.Pattern[str] | None = None
    # How the simulated agent passes for it (`--like`).
    standin: StandIn = field(default_factory=StandIn)
    # Files it keeps in the working copy for one session (gitignore patterns from the root):
    # never committed, whoever runs `git add -A`.
    session_files: tuple[str, ...] = ()
    # Variables no session may inherit (an orchestrator run from inside this CLI sets them).
    unset: tuple[str, ...] = ()
    # The versions the real binary passed the suite's scenarios with (oldest, newest).
    tested: tuple[str, str] | None = None
    # Flags that let it work without asking for permission (what `init` writes), and the flags
    # any of which show the user chose a mode (empty: the CLI has no such flag to check).
    unattended: tuple[str, ...] = ()
    permission_flags: tuple[str, ...] = ()

    def asks_permission(self, argv: Sequence[str]) -> bool:
        """Whether `argv` leaves the CLI asking before it edits or runs (a stalled stage)."""
        if not self.permission_flags:
            return False
        return not any(arg.split("=", 1)[0] in self.permission_flags for arg in argv)

    def untested(self, version_output: str) -> str | None:
        """A warning when `<binary> --version` names a version outside the tested range."""
        if self.tested is None:
            return None
        found = re.search(r"\d+\.\d+\.\d+", version_output)
        if found is None:
            return f"{self.name}: could not read its version from {version_output.strip()!r}"
        version = _version(found.group())
        oldest, newest = self.tested
        if _version(oldest) <= version <= _version(newest):
            return None
        span = oldest if oldest == newest else f"{oldest} to {newest}"
        return (
            f"{self.name} {found.group()} is not a version this orchestrator was tested with "
            f"({span}); see the README's compatibility table"
        )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
