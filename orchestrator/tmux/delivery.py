"""Steering a running agent: through its CLI's hooks first, by typing one short line if not.

`steer` answers a hook that waits (see `orchestrator.agents.steering`): a nudge or a question's
answer reaches the agent without a keystroke. Typing (`deliver`) is the last resort, and for
agents that take no argv prompt: one short line (a long text goes into a file it points to),
one bracketed paste from a uniquely named buffer (so the TUI sees a paste, not keystrokes that
open pickers on `/` or `@`), Enter as a separate key, and the CLI's own evidence that it took
the line. Enter alone is retried; the text never is. Two senders (even in two processes) never
interleave: each session has an input lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
import uuid
from pathlib import Path
from typing import Literal

from orchestrator.agents.profiles import AgentProfile
from orchestrator.agents.steering import (
    POINTER,
    answer,
    question_text,
    read_signal,
    waiting_request,
)
from orchestrator.blocking import FILES, TMUX
from orchestrator.errors import DeliveryError, OrchestratorError
from orchestrator.eventlog import EventLog
from orchestrator.files import PRIVATE_FILE_MODE, StateDir, open_private, write_private
from orchestrator.tmux.model import AgentSession
from orchestrator.tmux.names import tmux_literal
from orchestrator.tmux.screen import POLL_INTERVAL, wait_for_screen, wait_until_ready
from orchestrator.tmux.server import TmuxServer

# How a CLI shows a paste instead of its text: "[Pasted text #1]" (Claude), "[Pasted ~1 lines]".
PASTE_MARKER = "[Pasted"
TAIL_CHARS = 24
SHORT_LINE = 100  # characters typed at most; a longer text goes into a file the line points to
DIALOG_TIMEOUT = 10.0  # seconds for a question dialog to be drawn after its signal
MAX_DISMISSALS = 3
CONFIRM_TIMEOUT = 3.0  # seconds for the line to show, and for the CLI to take it after Enter
INPUT_LOCK_TIMEOUT = 60.0  # seconds to wait for another process typing into the same session
LOCK_POLL = 0.05


class InputLocks:
    """Per-session input locks: an asyncio lock within this process, an flock across them."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, name: str) -> _SessionLock:
        """The input lock of session `name`."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        return _SessionLock(lock, self.state.folder("run") / f"{name}.lock")


def _try_flock(fd: int) -> bool:
    """Take the lock without blocking: a thread parked in flock could never be given up."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _SessionLock:
    def __init__(self, lock: asyncio.Lock, path: Path) -> None:
        self._lock = lock
        self._path = path
        self._fd: int | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            self._fd = open_private(self._path, os.O_RDWR)
            deadline = time.monotonic() + INPUT_LOCK_TIMEOUT
            while not _try_flock(self._fd):
                if time.monotonic() > deadline:
                    raise DeliveryError(f"{self._path.stem}: another process kept its input")
                await asyncio.sleep(LOCK_POLL)
        except BaseException:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
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
        await TMUX.run(
            server.run, "send-keys", "-t", target, *(["-l"] if literal else []), "--", keys
        )
        if enter:
            await TMUX.run(server.run, "send-keys", "-t", target, "Enter")
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
    """Type `text` into a ready agent as one short line, and confirm the CLI submitted it.

    Anything longer than a short line goes into an owner-only file that the typed line points
    to, so nothing wraps in the input box. The line is pasted exactly once (bracketed); only
    Enter is retried, because a lost Enter strands the line while a resent text duplicates it.
    Submission is judged by the CLI's own evidence where it gives one (a hook that fires on
    submit), else by the line leaving the row the cursor is on.
    """
    if not await wait_until_ready(server, session, profile, events):
        raise DeliveryError(f"{session.name}: agent not ready within {profile.ready_timeout}s")
    async with locks(session.name):
        started = time.monotonic()
        line, token = await FILES.run(_short_line, locks.state, session, text)
        before = _mtime(session.submit_file)
        await TMUX.run(_paste, server, locks.state, session, line)
        landed = await wait_for_screen(
            server, session.name, lambda s: _shows(s, token), timeout=confirm_timeout
        )
        if landed is None:
            events.write("deliver-error", session=session.name, reason="paste not visible")
            raise DeliveryError(f"{session.name}: the typed line did not appear on screen")
        for press in range(1, enter_retries + 2):
            await TMUX.run(server.run, "send-keys", "-t", session.pane_id, "Enter")
            if await _submitted(server, session, profile, token, before, confirm_timeout):
                events.write(
                    "deliver",
                    session=session.name,
                    bytes=len(text.encode()),
                    typed=len(line),
                    enter_presses=press,
                    evidence="hook" if profile.submit_signal else "screen",
                    ms=round((time.monotonic() - started) * 1000, 2),
                )
                return
    events.write("deliver-error", session=session.name, reason="enter not accepted")
    raise DeliveryError(
        f"{session.name}: no sign the CLI took the line after {enter_retries + 1} Enter presses"
    )


async def steer(
    server: TmuxServer,
    locks: InputLocks,
    events: EventLog,
    session: AgentSession,
    text: str,
    profile: AgentProfile,
    *,
    question: bool,
) -> Literal["hook", "typed"]:
    """Give the agent `text` after its turn ended (or it asked): through the waiting hook when
    its CLI can be steered so, else typed after closing any question dialog (closing it may
    end the turn: then the turn end's hook takes the text)."""
    signal = session.attention_file if question else session.turn_end_file
    if await _answer_hook(events, session, signal, text, profile):
        return "hook"
    if question:
        before = _mtime(session.turn_end_file)
        await _close_question(server, locks, events, session, profile)
        ended = await _changed(session.turn_end_file, before, CONFIRM_TIMEOUT)
        if ended and await _answer_hook(events, session, session.turn_end_file, text, profile):
            return "hook"
    await deliver(server, locks, events, session, text, profile)
    return "typed"


async def defer_question(
    events: EventLog, session: AgentSession, text: str, profile: AgentProfile
) -> str | None:
    """Answer the agent's question with `text` (a person answers later: it should stop) through
    its waiting hook; the question, as the hook reported it."""
    payload = await FILES.run(read_signal, session.attention_file)
    await _answer_hook(events, session, session.attention_file, text, profile)
    return question_text(payload)


async def _answer_hook(
    events: EventLog, session: AgentSession, signal: Path, text: str, profile: AgentProfile
) -> bool:
    """Answer the hook that waits on `signal` with `text`; False when none waits (or the CLI
    cannot go on with it: the hook is let go with `{}`)."""
    payload = await FILES.run(read_signal, signal)
    request = waiting_request(payload, signal)
    if payload is None or request is None:
        return False
    output = profile.support.steer(payload, text)
    taken = await answer(signal, request, output or "{}")  # `{}` lets a waiting hook go
    events.write("steer", session=session.name, via="hook", steered=bool(output), took=taken)
    return bool(output and taken)


async def _close_question(
    server: TmuxServer,
    locks: InputLocks,
    events: EventLog,
    session: AgentSession,
    profile: AgentProfile,
) -> None:
    """Close the question dialog with the profile's keys, once it is drawn (keys sent before
    that reach the turn instead: Escape interrupts it) and until it is gone."""
    pattern = profile.question_pattern
    if pattern is None:
        for key in profile.dismiss_keys:
            await send_keys(server, locks, events, session.name, key, literal=False)
        return

    def drawn(screen: list[str]) -> bool:
        return any(map(pattern.search, screen))

    for _ in range(MAX_DISMISSALS):
        if await wait_for_screen(server, session.name, drawn, timeout=DIALOG_TIMEOUT) is None:
            return  # no dialog (any more): the input line is there
        for key in profile.dismiss_keys:
            await send_keys(server, locks, events, session.name, key, literal=False)
        gone = await wait_for_screen(
            server, session.name, lambda s: not drawn(s), timeout=CONFIRM_TIMEOUT
        )
        if gone is not None:
            return


def _short_line(state: StateDir, session: AgentSession, text: str) -> tuple[str, str]:
    """(the line to type, a token unique to it): the text itself when short, else a pointer."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    line = text.strip()
    if len(line) <= SHORT_LINE and "\n" not in line:
        return line, line[-TAIL_CHARS:]
    token = f"bmad-{uuid.uuid4().hex[:10]}"
    path = state.folder("prompts") / f"{token}.md"
    write_private(path, text if text.endswith("\n") else text + "\n")
    return POINTER.format(path=path), token


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


async def _changed(path: Path, before: int | None, timeout: float) -> bool:
    """Whether `path` is written (its mtime moves from `before`) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _mtime(path) not in (None, before):
            return True
        await asyncio.sleep(POLL_INTERVAL)
    return False


def _shows(screen: list[str], token: str) -> bool:
    """The token on screen, even when the input box wrapped it (or a paste marker stands in)."""
    if any(token in line or PASTE_MARKER in line for line in screen):
        return True
    return token in "".join(line.strip() for line in screen)


async def _submitted(
    server: TmuxServer,
    session: AgentSession,
    profile: AgentProfile,
    token: str,
    before: int | None,
    timeout: float,
) -> bool:
    """Whether the CLI took the line: its submit hook fired, or the line left the cursor's row."""
    if profile.submit_signal:
        return await _changed(session.submit_file, before, timeout)

    def left(screen: list[str]) -> bool:
        rows = [row for row, text in enumerate(screen) if token in text or PASTE_MARKER in text]
        cursor = _cursor_row(server, session)
        return not rows or (cursor is not None and rows[-1] < cursor)

    return await wait_for_screen(server, session.name, left, timeout=timeout) is not None


def _cursor_row(server: TmuxServer, session: AgentSession) -> int | None:
    try:
        out = server.run("display-message", "-p", "-t", session.pane_id, "#{cursor_y}")
        return int(out[0])
    except (IndexError, ValueError, OrchestratorError):
        return None


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
