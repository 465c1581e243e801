"""Names on a tmux server: session names, escaping for tmux formats, the socket file."""

from __future__ import annotations

import os
import re
import shlex
import uuid
from datetime import UTC, datetime
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitise(value: str) -> str:
    """Make `value` safe inside a tmux session name (`.` and `:` are target syntax)."""
    return _UNSAFE.sub("-", value)


def session_name(prefix: str, stage: str, story_id: str) -> str:
    """`{prefix}-{stage}-{story}`; `1.1` becomes `1-1`."""
    return f"{sanitise(prefix)}-{sanitise(stage)}-{sanitise(story_id)}"


def tmux_literal(value: str) -> str:
    """Escape `value` for a tmux argument that tmux expands formats in (`#S`, `#(cmd)`).

    tmux expands formats in `-c` start directories, window names, `pipe-pane` commands and
    `load-buffer` paths; a path such as `/repo/#(touch x)` would otherwise run a command.
    """
    return value.replace("#", "##")


def socket_path(socket: str) -> Path:
    """Where tmux puts the socket file of `tmux -L socket`."""
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.geteuid()}" / socket


def attach_command(socket: str, name: str, *, read_only: bool = True) -> str:
    """The exact command to watch a session; read-only so a keystroke cannot steal input."""
    where = [] if socket == "default" else ["-L", socket]
    flags = ["-r"] if read_only else []
    return shlex.join(["tmux", *where, "attach", *flags, "-t", f"={sanitise(name)}"])


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
