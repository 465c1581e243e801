"""What a session's pane shows: capture, waiting for a screen, first-run dialogs, readiness.

Agent TUIs are read from their screen only where nothing better exists: to answer first-run
dialogs (workspace trust and the like) and to know when the input line is there. The patterns
are data on the agent's profile.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence

from orchestrator.agents.profiles import AgentProfile
from orchestrator.blocking import TMUX
from orchestrator.errors import SessionNotFound
from orchestrator.eventlog import EventLog
from orchestrator.tmux.model import AgentSession
from orchestrator.tmux.server import TmuxServer

POLL_INTERVAL = 0.05
MAX_ANSWERS = 3  # answering the same dialog more often means the keys do not work


async def capture(
    server: TmuxServer, name: str, start: int | None = None, end: int | None = None
) -> list[str]:
    """Pane text; `start`/`end` are tmux lines (negative = scrollback, None = screen edges)."""
    return await TMUX.run(server.capture, name, start, end)


async def wait_for_screen(
    server: TmuxServer,
    name: str,
    predicate: Callable[[list[str]], object],
    *,
    timeout: float,
    start: int | None = None,
) -> list[str] | None:
    """Poll the pane until `predicate(lines)` holds; None at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        screen = await capture(server, name, start)
        if predicate(screen):
            return screen
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(POLL_INTERVAL)


async def wait_until_ready(
    server: TmuxServer, session: AgentSession, profile: AgentProfile, events: EventLog
) -> bool:
    """Answer known first-run dialogs until the profile's ready pattern shows.

    Returns False at the profile's ready deadline, or when the agent exited first.
    """
    deadline = time.monotonic() + profile.ready_timeout
    answered: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            screen = await capture(server, session.name)
        except SessionNotFound:
            return False
        dialog = profile.first_dialog(screen)
        if dialog is not None and answered.get(dialog.name, 0) < MAX_ANSWERS:
            answered[dialog.name] = answered.get(dialog.name, 0) + 1
            await press_keys(server, session.name, dialog.keys)
            events.write("dialog", session=session.name, dialog=dialog.name)
            # Wait for the dialog to go before looking again, so it is answered once.
            await wait_for_screen(
                server,
                session.name,
                _gone(dialog.pattern),
                timeout=min(5.0, max(0.0, deadline - time.monotonic())),
            )
            continue
        if profile.is_ready(screen):
            events.write("ready", session=session.name)
            return True
        if session.exit_file.exists():
            return False
        await asyncio.sleep(POLL_INTERVAL)
    events.write("ready-timeout", session=session.name, seconds=profile.ready_timeout)
    return False


def _gone(pattern: re.Pattern[str]) -> Callable[[list[str]], bool]:
    return lambda screen: pattern.search("\n".join(screen)) is None


async def press_keys(server: TmuxServer, name: str, keys: Sequence[str]) -> None:
    """Press tmux key names (`Enter`, `Down`, `Escape`) in a session, one after another."""
    for key in keys:
        await TMUX.run(server.run, "send-keys", "-t", f"={name}:", key)
