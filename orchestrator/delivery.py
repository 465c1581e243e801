"""Typed delivery: the one hardened way to put text into an agent's input line.

Used for agents that take no argv prompt and for nudges. The protocol is the one every mature
orchestrator converged on: one bracketed paste from a uniquely named buffer (so the TUI sees a
paste, not keystrokes that open pickers on `/` or `@`), Enter as a separate key, then the screen
is checked to confirm the text left the input line. Enter alone is retried; the text never is.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import TYPE_CHECKING

from orchestrator.errors import DeliveryError
from orchestrator.files import PRIVATE_FILE_MODE
from orchestrator.profiles import AgentProfile

if TYPE_CHECKING:
    from orchestrator.sessions import AgentSession, TmuxAgentManager

PASTE_MARKER = "[Pasted text"
TAIL_CHARS = 24


def _tail(text: str) -> str:
    """A recognisable piece of the text's last line, as an input line would show it."""
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return last.strip()[-TAIL_CHARS:]


def _input_lines(screen: list[str], profile: AgentProfile) -> list[str]:
    if profile.ready_pattern is None:
        return screen[-3:]
    return [line for line in screen if profile.ready_pattern.search(line)][-1:]


def _holds_text(screen: list[str], profile: AgentProfile, tail: str) -> bool:
    return any(tail in line or PASTE_MARKER in line for line in _input_lines(screen, profile))


async def deliver_text(
    manager: TmuxAgentManager,
    session: AgentSession,
    text: str,
    profile: AgentProfile,
    *,
    confirm_timeout: float,
    enter_retries: int,
) -> None:
    """Paste `text` once, press Enter, confirm; the caller holds the session's lock."""
    started = time.monotonic()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    tail = _tail(text)
    await asyncio.to_thread(_paste, manager, session, text)
    landed = await manager.wait_for_screen(
        session.name, lambda s: _holds_text(s, profile, tail), timeout=confirm_timeout
    )
    if landed is None:
        manager.events.write("deliver-error", session=session.name, reason="paste not visible")
        raise DeliveryError(f"{session.name}: pasted text did not appear in the input line")
    for press in range(1, enter_retries + 2):
        await asyncio.to_thread(manager._tmux, "send-keys", "-t", session.pane_id, "Enter")
        left = await manager.wait_for_screen(
            session.name, lambda s: not _holds_text(s, profile, tail), timeout=confirm_timeout
        )
        if left is not None:
            manager.events.write(
                "deliver",
                session=session.name,
                bytes=len(text.encode()),
                enter_presses=press,
                ms=round((time.monotonic() - started) * 1000, 2),
            )
            return
    manager.events.write("deliver-error", session=session.name, reason="enter not accepted")
    raise DeliveryError(
        f"{session.name}: text still in the input line after {enter_retries + 1} Enter presses"
    )


def _paste(manager: TmuxAgentManager, session: AgentSession, text: str) -> None:
    # A unique buffer per send: tmux buffers are server-wide, two sends must not share one.
    buffer = f"bmad-{session.name}-{uuid.uuid4().hex[:8]}"
    from orchestrator.sessions import tmux_literal

    path = manager.state.folder("run") / f"{buffer}.txt"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        os.write(fd, text.encode())
        os.close(fd)
        manager._tmux("load-buffer", "-b", buffer, tmux_literal(str(path)))
        # -p bracketed paste, -r keep LF as LF (CR would submit), -d delete the buffer after.
        manager._tmux("paste-buffer", "-p", "-r", "-d", "-b", buffer, "-t", session.pane_id)
    finally:
        path.unlink(missing_ok=True)
