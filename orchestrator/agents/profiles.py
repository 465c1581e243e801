"""Agent profiles: how an agent CLI starts, when it is ready, and how it gets its prompt.

The field learned that typing a prompt into a freshly started TUI races its start-up, so every
profile passes the stage prompt as the last argv element when the CLI allows it. Typed delivery
(see `delivery.py`) is for CLIs that take no argv prompt and for later nudges. Screen patterns are
data here, not code, because agent UIs change between versions.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from orchestrator.errors import InputError

ProfileName = Literal["claude", "generic", "simulated"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("claude", "generic", "simulated")
PromptVia = Literal["argv", "file"]
# How the CLI learns to signal turn ends and questions: nothing (the agent writes the files
# itself, or signals nothing) or a Claude Code settings file passed with `--settings`.
HookStyle = Literal["none", "claude-settings"]

# Hook commands are constant text: the paths arrive through the session's environment.
TURN_END_HOOK = '[ -n "$BMAD_TURN_END_FILE" ] && cat > "$BMAD_TURN_END_FILE" || cat > /dev/null'
ATTENTION_HOOK = '[ -n "$BMAD_ATTENTION_FILE" ] && cat > "$BMAD_ATTENTION_FILE" || cat > /dev/null'


@dataclass(frozen=True)
class Dialog:
    """A first-run screen and the keys that accept it."""

    name: str
    pattern: re.Pattern[str]
    keys: tuple[str, ...]


@dataclass(frozen=True)
class AgentProfile:
    """Everything the runtime needs to know to start one kind of agent."""

    name: str
    command: tuple[str, ...]
    prompt_via_argv: bool = True
    ready_pattern: re.Pattern[str] | None = None
    dialogs: tuple[Dialog, ...] = ()
    ready_timeout: float = 120.0
    # tmux refuses commands over ~16 KB (bytes, not characters); longer prompts go through an
    # owner-only file the agent is told to read. `file` always does that: argv is readable by
    # every local user through /proc/*/cmdline.
    max_argv_prompt: int = 8000
    prompt_via: PromptVia = "argv"
    env: dict[str, str] = field(default_factory=dict)
    hooks: HookStyle = "none"
    # Keys that close a question or permission dialog before a nudge is typed.
    dismiss_keys: tuple[str, ...] = ()

    def argv(self, prompt: str | None, *, settings: Path | None = None) -> list[str]:
        """The agent's argv; the prompt is the last element when delivered that way."""
        args = list(self.command)
        if settings is not None and self.hooks == "claude-settings":
            args += ["--settings", str(settings)]
        if prompt is not None and self.prompt_via_argv:
            args.append(prompt)
        return args

    def settings(self) -> str | None:
        """The per-invocation settings file's content, for CLIs that take one."""
        if self.hooks != "claude-settings":
            return None
        return json.dumps(claude_hook_settings(), indent=1)

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
        return any(self.ready_pattern.search(line) for line in screen)


CLAUDE_DIALOGS = (
    Dialog(
        "workspace-trust",
        re.compile(
            r"Do you trust the files in this folder|Yes, I trust this folder"
            r"|Is this a project you created or one you trust"
        ),
        ("Enter",),
    ),
    # Its default choice is "No, exit", hence Down first.
    Dialog("bypass-permissions", re.compile(r"Bypass Permissions mode"), ("Down", "Enter")),
    Dialog("new-mcp-server", re.compile(r"new MCP server", re.IGNORECASE), ("Enter",)),
)
CLAUDE_READY = re.compile(r"^\s*[│|]?\s*[>❯]\s")
# Claude Code scrubs none of these itself; inherited, they make a nested session save no
# transcript (CLAUDE_CODE_CHILD_SESSION) or refuse to start (CLAUDECODE, older versions).
CLAUDE_NESTING_VARIABLES = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_CHILD_SESSION")


def claude_hook_settings() -> dict[str, object]:
    """Hooks for `claude --settings FILE`: turn ends and requests for a person, as files.

    `Stop` runs when the main agent finished responding (`StopFailure` on an API error);
    `PermissionRequest` and `PreToolUse` for `AskUserQuestion` fire the moment Claude needs a
    person (even bypass mode does not auto-approve AskUserQuestion); `Notification` of type
    `permission_prompt` is the slower (~6 s) fallback. Hooks merge with the user's own.
    """

    def command(line: str) -> list[dict[str, object]]:
        return [{"type": "command", "command": line, "timeout": 10}]

    return {
        "hooks": {
            "Stop": [{"hooks": command(TURN_END_HOOK)}],
            "StopFailure": [{"hooks": command(TURN_END_HOOK)}],
            "PreToolUse": [{"matcher": "AskUserQuestion", "hooks": command(ATTENTION_HOOK)}],
            "PermissionRequest": [{"hooks": command(ATTENTION_HOOK)}],
            "Notification": [{"matcher": "permission_prompt", "hooks": command(ATTENTION_HOOK)}],
        }
    }


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
) -> AgentProfile:
    """Build a profile by name; `command` defaults to `claude` or the simulated agent."""
    if name == "claude":
        base = split_command(command or "claude")
        profile = AgentProfile(
            "claude",
            (*base, *flags),
            ready_pattern=CLAUDE_READY,
            dialogs=CLAUDE_DIALOGS,
            hooks="claude-settings",
            dismiss_keys=("Escape",),
        )
    elif name == "simulated":
        base = split_command(command) if command else simulated_command()
        profile = AgentProfile("simulated", (*base, *flags), ready_pattern=SIMULATED_READY)
    elif name == "generic":
        if command is None:
            raise InputError("the generic profile needs a command")
        profile = AgentProfile("generic", (*split_command(command), *flags))
    else:
        raise InputError(f"unknown agent profile {name!r}; expected one of {PROFILE_NAMES}")
    if ready_timeout is not None:
        profile = replace(profile, ready_timeout=ready_timeout)
    return replace(profile, prompt_via=prompt_via)
