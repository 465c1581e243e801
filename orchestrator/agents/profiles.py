"""Agent profiles: how an agent CLI starts, when it is ready, and how it gets its prompt.

The field learned that typing a prompt into a freshly started TUI races its start-up, so every
profile passes the stage prompt as the last argv element when the CLI allows it. Typed delivery
(see `delivery.py`) is for CLIs that take no argv prompt and for later nudges. Screen patterns are
data here, not code, because agent UIs change between versions.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from orchestrator.agents.clis import CLIS
from orchestrator.agents.clis.base import Activation, CliSupport, Dialog, Launch, NoSupport
from orchestrator.agents.clis.simulated import SimulatedSupport
from orchestrator.errors import InputError

ProfileName = Literal["claude", "codex", "gemini", "copilot", "opencode", "generic", "simulated"]
PROFILE_NAMES: tuple[ProfileName, ...] = (
    "claude",
    "codex",
    "gemini",
    "copilot",
    "opencode",
    "generic",
    "simulated",
)
PromptVia = Literal["argv", "file"]


@dataclass(frozen=True)
class AgentProfile:
    """Everything the runtime needs to know to start one kind of agent."""

    name: str
    command: tuple[str, ...]
    prompt_via_argv: bool = True
    ready_pattern: re.Pattern[str] | None = None
    busy_pattern: re.Pattern[str] | None = None
    dialogs: tuple[Dialog, ...] = ()
    ready_timeout: float = 120.0
    # tmux refuses commands over ~16 KB (bytes, not characters); longer prompts go through an
    # owner-only file the agent is told to read. `file` always does that: argv is readable by
    # every local user through /proc/*/cmdline.
    max_argv_prompt: int = 8000
    prompt_via: PromptVia = "argv"
    env: dict[str, str] = field(default_factory=dict)
    # The CLI's hooks (turn ends, questions) and usage records.
    support: CliSupport = field(default_factory=NoSupport)
    # The option that precedes the prompt (`-i` for Gemini); empty: the prompt is positional.
    prompt_flag: tuple[str, ...] = ()
    activation: Activation = "slash"
    agent_flag: tuple[str, ...] = ()  # the option naming the agent (`--agent` for opencode)
    # Keys that close a question or permission dialog before a nudge is typed.
    dismiss_keys: tuple[str, ...] = ()
    question_pattern: re.Pattern[str] | None = None  # a question dialog is drawn
    hooks_off_pattern: re.Pattern[str] | None = None  # the CLI says it skipped our hooks
    # Whether the CLI's hook says when a typed line was submitted (else the screen is read).
    submit_signal: bool = False

    def argv(
        self, prompt: str | None, *, launch: Launch | None = None, agent: str = ""
    ) -> list[str]:
        """The agent's argv: command, the CLI's launch arguments, agent, then the prompt."""
        args = list(self.command)
        if launch is not None:
            args += launch.args
        if self.agent_flag and agent:
            args += [*self.agent_flag, agent]
        if prompt is not None and self.prompt_via_argv:
            args += [*self.prompt_flag, prompt]
        return args

    def first_dialog(self, screen: Sequence[str]) -> Dialog | None:
        """The first known first-run dialog visible on `screen`, if any."""
        text = "\n".join(screen)
        return next((d for d in self.dialogs if d.pattern.search(text)), None)

    def is_ready(self, screen: Sequence[str]) -> bool:
        """True when the input line shows and no first-run dialog is in the way."""
        if self.ready_pattern is None:
            return True
        if self.first_dialog(screen) is not None:
            return False
        if self.busy_pattern is not None and any(map(self.busy_pattern.search, screen)):
            return False
        return any(self.ready_pattern.search(line) for line in screen)


SIMULATED_READY = re.compile(r"^sim> ")


def split_command(command: str | Sequence[str]) -> tuple[str, ...]:
    """A command given as a string is split like a shell would, never run through one."""
    parts = tuple(shlex.split(command)) if isinstance(command, str) else tuple(command)
    if not parts:
        raise InputError("agent command is empty")
    return parts


def simulated_command(args: Sequence[str] = ()) -> tuple[str, ...]:
    """The simulated agent, run with this interpreter so it works inside any venv."""
    return (sys.executable, "-m", "orchestrator.agents.simulated", *args)


def make_profile(
    name: ProfileName,
    command: str | Sequence[str] | None = None,
    *,
    flags: Sequence[str] = (),
    ready_timeout: float | None = None,
    prompt_via: PromptVia = "argv",
    activation: Activation | None = None,
) -> AgentProfile:
    """Build a profile by name; `command` defaults to the CLI's binary or the simulated agent."""
    if name in CLIS:
        spec = CLIS[name]
        profile = AgentProfile(
            name,
            (*split_command(command or spec.binary), *flags),
            ready_pattern=spec.ready,
            busy_pattern=spec.busy,
            dialogs=spec.dialogs,
            support=spec.support,
            prompt_flag=spec.prompt_flag,
            activation=spec.activation,
            agent_flag=spec.agent_flag,
            dismiss_keys=spec.dismiss_keys,
            question_pattern=spec.question,
            hooks_off_pattern=spec.hooks_off,
            submit_signal=spec.submit_signal,
        )
    elif name == "simulated":
        base = split_command(command) if command else simulated_command()
        profile = AgentProfile(
            "simulated", (*base, *flags), ready_pattern=SIMULATED_READY, support=SimulatedSupport()
        )
    elif name == "generic":
        if command is None:
            raise InputError("the generic profile needs a command")
        profile = AgentProfile("generic", (*split_command(command), *flags))
    else:
        raise InputError(f"unknown agent profile {name!r}; expected one of {PROFILE_NAMES}")
    if ready_timeout is not None:
        profile = replace(profile, ready_timeout=ready_timeout)
    if activation is not None:
        profile = replace(profile, activation=activation)
    return replace(profile, prompt_via=prompt_via)
