"""A session's pane output: piped to a capped log file from the first byte, and followed."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from orchestrator.blocking import FILES, TMUX
from orchestrator.filewatch import shared_watcher
from orchestrator.tmux.model import AgentSession
from orchestrator.tmux.names import tmux_literal
from orchestrator.tmux.server import TmuxServer

LOGCAP = Path(__file__).with_name("logcap.py")
_CURSOR_FORWARD = re.compile(r"\x1b\[(\d*)C")  # a TUI's way to draw spaces
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]|\r")


def pipe_command(log_path: Path, max_bytes: int) -> str:
    """The `pipe-pane` command that appends pane output to `log_path`, capped at `max_bytes`.

    tmux runs it with a shell after expanding formats in it: it is quoted, then escaped.
    """
    argv = [sys.executable, "-I", "-S", str(LOGCAP), str(log_path), str(max_bytes)]
    return tmux_literal(f"exec {shlex.join(argv)}")


async def stream(
    server: TmuxServer, session: AgentSession, *, from_start: bool = False
) -> AsyncIterator[str]:
    """New output lines of a session (ANSI stripped), following its log file.

    Ends when the session is gone and the log has been read to the end.
    """
    watcher = shared_watcher()
    with (
        watcher.subscribe([session.log_path.parent]) as changes,
        session.log_path.open("rb") as handle,
    ):
        if not from_start:
            handle.seek(0, os.SEEK_END)
        pending = b""
        while True:
            chunk = await FILES.run(handle.read)
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield _ANSI.sub("", line.decode(errors="replace"))
                continue
            if not await TMUX.run(server.exists, session.name):
                if pending:
                    yield _ANSI.sub("", pending.decode(errors="replace"))
                return
            await changes.wait()


def find_in_log(path: Path, pattern: re.Pattern[str], *, limit: int = 1 << 20) -> str | None:
    """The first match of `pattern` in the head of a pane log (ANSI stripped), or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit)
    except OSError:
        return None
    text = _CURSOR_FORWARD.sub(lambda m: " " * int(m.group(1) or 1), head.decode(errors="replace"))
    found = pattern.search(_ANSI.sub("", text))
    return found.group(0).strip() if found else None
