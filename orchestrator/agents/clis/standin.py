"""What every CLI's stand-in shares: the session it plays, hooks run as CLIs run them, and usage
records written where and as a CLI writes them.

Each CLI module has a `StandIn` (its screens, how it signals turn ends and questions, where it
records usage); `orchestrator/agents/lookalike.py` plays whichever one `--like` names, so the
orchestrator's side of every CLI runs for real in tests with only the model missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Tokens:
    """One turn's usage, as `--usage IN:OUT:CACHE_READ:CACHE_WRITE[:MODEL]` gives it."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    model: str

    @classmethod
    def parse(cls, spec: str, default_model: str) -> Tokens:
        """The spec; the model defaults to one the CLI would run."""
        parts = spec.split(":", 4)
        fresh, output, read, write = (int(part) for part in parts[:4])
        return cls(fresh, output, read, write, parts[4] if len(parts) > 4 else default_model)


class Session(Protocol):
    """The simulated session a stand-in plays (see `Lookalike`)."""

    args: argparse.Namespace  # the CLI's own options, as the simulated agent parsed them
    cwd: Path
    thread_id: str
    session_id: str
    turns: int
    totals: list[Tokens]


class StandIn:
    """How the simulated agent passes for one CLI; each CLI module overrides what it has."""

    input_line = "> "
    idle_text: str | None = None  # what the CLI shows idle besides its input line
    default_model = "unknown"

    def trust_screen(self, cwd: Path) -> str | None:
        """The CLI's trust question, if it shows one."""
        return None

    def end_turn(
        self, session: Session, prompt: str, message: str, transcript: Path | None
    ) -> None:
        """Signal the end of a turn as the CLI does."""

    def ask(self, session: Session, question: str) -> bool:
        """Ask for a person as the CLI does; False when it has no way configured."""
        return False

    def record_usage(self, session: Session, tokens: Tokens) -> Path | None:
        """Write one turn's tokens where the CLI keeps them; its transcript, if any."""
        return None

    def subagent_stop(self, session: Session) -> None:
        """A subagent's turn ended (only some CLIs say so)."""

    def shutdown(self, session: Session) -> None:
        """The session is ending (SIGTERM/SIGHUP): what the CLI writes then."""


def run_hook(argv: list[str], payload: dict[str, Any], *, as_argument: bool = False) -> str:
    """Run a hook as the CLI does: JSON on stdin (or as the last argument); its stdout."""
    data = json.dumps(payload)
    done = subprocess.run(
        [*argv, data] if as_argument else argv,
        input=None if as_argument else data.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.stdout.decode(errors="replace")


def commands(entries: Any) -> list[str]:
    """The command strings of a hooks list (`[{"hooks": [{"command": ...}]}]`)."""
    found = []
    for entry in entries if isinstance(entries, list) else []:
        for hook in entry.get("hooks", []) if isinstance(entry, dict) else []:
            if isinstance(hook, dict) and "command" in hook:
                found.append(str(hook["command"]))
    return found


def now_iso() -> str:
    """The time as the CLIs write it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def append(path: Path, *records: dict[str, Any]) -> None:
    """Append JSON lines, making the folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def data_home(variable: str, default: str) -> Path:
    """A CLI's data folder: its own variable, else `default` under HOME."""
    return Path(os.environ.get(variable) or Path.home() / default)
