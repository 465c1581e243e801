"""How the simulated agent passes for a real CLI (`--like claude|codex|gemini|copilot|opencode`).

It takes that CLI's argv (its prompt option, `--session-id`, Codex's `-c` overrides, opencode's
`--agent`) and plays the CLI's stand-in (`CliSpec.standin`, in the CLI's own module): its input
line and trust screen, its turn-end and question signals through the CLI's own mechanism with
the payload shape the CLI sends, and with `--usage IN:OUT:CACHE_READ:CACHE_WRITE[:MODEL]` each
turn's tokens recorded where and as that CLI records them. So the orchestrator's side of every
CLI runs for real in tests; only the model is missing.
"""

from __future__ import annotations

import argparse
import signal
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.agents.clis import CLIS
from orchestrator.agents.clis.standin import StandIn, Tokens

LIKES = tuple(CLIS)
INPUT_LINES = {name: spec.standin.input_line for name, spec in CLIS.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every CLI the simulated agent can pass for."""
    parser.add_argument("--like", choices=LIKES, help="pass for this agent CLI")
    parser.add_argument("--session-id", help="(claude, gemini, copilot) the session id")
    parser.add_argument("-c", dest="overrides", action="append", default=[], help="(codex)")
    parser.add_argument("-i", dest="prompt_option", help="(gemini, copilot) the prompt")
    parser.add_argument("--prompt", dest="prompt_option", help="(opencode) the prompt")
    parser.add_argument("--agent", help="(opencode) the agent")
    parser.add_argument("--dangerously-bypass-hook-trust", action="store_true", help="(codex)")
    parser.add_argument(
        "--usage",
        metavar="IN:OUT:CR:CW[:MODEL]",
        help="tokens to record per turn, where and as the CLI of --like records them",
    )


@dataclass
class Lookalike:
    """One simulated session passing for the CLI `like`."""

    like: str
    args: argparse.Namespace
    cwd: Path = field(default_factory=Path.cwd)
    thread_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    turns: int = 0
    totals: list[Tokens] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session_id = self.args.session_id or self.thread_id
        self.standin: StandIn = CLIS[self.like].standin
        if type(self.standin).shutdown is not StandIn.shutdown:  # it writes as it ends
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, self._shutdown)

    def trust_screen(self) -> str | None:
        """The CLI's trust question, if it has one."""
        return self.standin.trust_screen(self.cwd)

    def idle_text(self) -> str | None:
        """What the CLI shows while idle besides its input line."""
        return self.standin.idle_text

    def end_turn(self, prompt: str, message: str, *, signal: bool = True) -> None:
        """Record the turn's usage, then signal its end as the CLI does."""
        transcript = self.record_usage()
        if signal:
            self.standin.end_turn(self, prompt, message, transcript)

    def subagent_stop(self) -> None:
        """A subagent's turn ended (Copilot says so)."""
        self.standin.subagent_stop(self)

    def ask(self, question: str) -> bool:
        """Ask for a person through the CLI's mechanism; False when it has none configured."""
        return self.standin.ask(self, question)

    def record_usage(self) -> Path | None:
        """Write this turn's tokens where the CLI keeps them; returns its transcript, if any."""
        self.turns += 1
        if not self.args.usage:
            return None
        tokens = Tokens.parse(self.args.usage, self.standin.default_model)
        self.totals.append(tokens)
        return self.standin.record_usage(self, tokens)

    def _shutdown(self, signum: int, frame: object) -> None:
        self.standin.shutdown(self)
        sys.exit(0)
