"""Typed delivery: the one hardened way to put text into an agent's input line.

Used for agents that take no argv prompt and for nudges. The protocol is the one every mature
orchestrator converged on: one bracketed paste from a uniquely named buffer (so the TUI sees a
paste, not keystrokes that open pickers on `/` or `@`), Enter as a separate key, then the screen
is checked to confirm the text left the input line. Enter alone is retried; the text never is.
Two senders (even in two processes) never interleave: each session has an input lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
import uuid
from pathlib import Path

from orchestrator.agents.profiles import AgentProfile
from orchestrator.errors import DeliveryError
from orchestrator.eventlog import EventLog
from orchestrator.files import PRIVATE_FILE_MODE, StateDir, open_private
from orchestrator.tmux.model import AgentSession
from orchestrator.tmux.names import tmux_literal
from orchestrator.tmux.screen import wait_for_screen, wait_until_ready
from orchestrator.tmux.server import TmuxServer

PASTE_MARKER = "[Pasted text"
TAIL_CHARS = 24
CONFIRM_TIMEOUT = 2.0  # seconds for the paste to show, and for it to leave after Enter


class InputLocks:
    """Per-session input locks: an asyncio lock within this process, an flock across them."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, name: str) -> _SessionLock:
        """The input lock of session `name`."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        return _SessionLock(lock, self.state.folder("run") / f"{name}.lock")


class _SessionLock:
    def __init__(self, lock: asyncio.Lock, path: Path) -> None:
        self._lock = lock
        self._path = path
        self._fd: int | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            self._fd = open_private(self._path, os.O_RDWR)
            await asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._lock.release()


async def send_keys(
    server: TmuxServer,
    locks: InputLocks,
    events: EventLog,
    name: str,
    keys: str,
    *,
    enter: bool = False,
    literal: bool = True,
) -> None:
    """Send `keys` as they are (literal) or as tmux key names; Enter separately if asked."""
    target = f"={name}:"
    async with locks(name):
        await asyncio.to_thread(
            server.run, "send-keys", "-t", target, *(["-l"] if literal else []), "--", keys
        )
        if enter:
            await asyncio.to_thread(server.run, "send-keys", "-t", target, "Enter")
    events.write("send", session=name, bytes=len(keys.encode()), enter=enter)


async def deliver(
    server: TmuxServer,
    locks: InputLocks,
    events: EventLog,
    session: AgentSession,
    text: str,
    profile: AgentProfile,
    *,
    confirm_timeout: float = CONFIRM_TIMEOUT,
    enter_retries: int = 3,
) -> None:
    """Type `text` into a ready agent: one bracketed paste, then Enter, confirmed on screen.

    The text is sent exactly once; only Enter is retried (at most `enter_retries` times),
    because a lost Enter strands the prompt while a resent text duplicates it.
    """
    if not await wait_until_ready(server, session, profile, events):
        raise DeliveryError(f"{session.name}: agent not ready within {profile.ready_timeout}s")
    async with locks(session.name):
        started = time.monotonic()
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        tail = _tail(text)
        await asyncio.to_thread(_paste, server, locks.state, session, text)
        landed = await wait_for_screen(
            server, session.name, lambda s: _holds_text(s, profile, tail), timeout=confirm_timeout
        )
        if landed is None:
            events.write("deliver-error", session=session.name, reason="paste not visible")
            raise DeliveryError(f"{session.name}: pasted text did not appear in the input line")
        for press in range(1, enter_retries + 2):
            await asyncio.to_thread(server.run, "send-keys", "-t", session.pane_id, "Enter")
            left = await wait_for_screen(
                server,
                session.name,
                lambda s: not _holds_text(s, profile, tail),
                timeout=confirm_timeout,
            )
            if left is not None:
                events.write(
                    "deliver",
                    session=session.name,
                    bytes=len(text.encode()),
                    enter_presses=press,
                    ms=round((time.monotonic() - started) * 1000, 2),
                )
                return
    events.write("deliver-error", session=session.name, reason="enter not accepted")
    raise DeliveryError(
        f"{session.name}: text still in the input line after {enter_retries + 1} Enter presses"
    )


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


def _paste(server: TmuxServer, state: StateDir, session: AgentSession, text: str) -> None:
    # A unique buffer per send: tmux buffers are server-wide, two sends must not share one.
    buffer = f"bmad-{session.name}-{uuid.uuid4().hex[:8]}"
    path = state.folder("run") / f"{buffer}.txt"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        os.write(fd, text.encode())
        os.close(fd)
        server.run("load-buffer", "-b", buffer, tmux_literal(str(path)))
        # -p bracketed paste, -r keep LF as LF (CR would submit), -d delete the buffer after.
        server.run("paste-buffer", "-p", "-r", "-d", "-b", buffer, "-t", session.pane_id)
    finally:
        path.unlink(missing_ok=True)
