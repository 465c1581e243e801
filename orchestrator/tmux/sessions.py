"""Agent sessions on one tmux server: spawn, adopt, list, inspect, kill, clean up.

- Starting a session is one chained tmux call (see `spawn`); its metadata lives in tmux user
  options, so a second manager (after a restart) lists, inspects and adopts sessions without any
  in-memory dict.
- remain-on-exit keeps a crashed agent's last screen and exit status; the wrapper also writes the
  exit status to a file, which the output watcher sees within milliseconds.
- Kill terminates the pane's whole process session, then the tmux session; what a dead server
  left behind is found through a record made at spawn (see `processes`).

Every public operation is a coroutine that runs its tmux calls in a worker thread, so many
sessions can be driven from one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from orchestrator.agents.profiles import AgentProfile
from orchestrator.blocking import TMUX
from orchestrator.defaults import (
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_PREFIX,
    DEFAULT_SOCKET,
    STATE_DIR_NAME,
)
from orchestrator.errors import SessionNotFound, StateDirError
from orchestrator.eventlog import EventLog
from orchestrator.files import StateDir, read_private, write_private
from orchestrator.tmux import delivery, screen
from orchestrator.tmux.model import AgentSession, SessionInfo
from orchestrator.tmux.names import attach_command, new_run_id, sanitise, session_name
from orchestrator.tmux.processes import (
    owner_alive,
    process_identity,
    terminate_marked,
    terminate_session,
)
from orchestrator.tmux.server import TmuxServer
from orchestrator.tmux.spawn import record_path, remove_cwd_files, start_session

KILL_GRACE = 2.0


class TmuxAgentManager:
    """Spawns, watches and kills the agent sessions of one state dir on one tmux server.

    `socket` names the server (`tmux -L socket`); the value `default` means the user's own server,
    whose global options are never changed. A `read_only` manager (for `sessions`, `attach` and
    `cleanup` run from any folder) writes nothing outside tmux.
    """

    def __init__(
        self,
        project: Path,
        *,
        socket: str = DEFAULT_SOCKET,
        prefix: str = DEFAULT_PREFIX,
        state_dir: Path | None = None,
        run_id: str | None = None,
        log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
        read_only: bool = False,
    ) -> None:
        self.project = Path(project).resolve()
        self.server = TmuxServer(socket)
        self.prefix = sanitise(prefix)
        self.state_dir = Path(os.path.abspath(state_dir or self.project / STATE_DIR_NAME))
        self.state = StateDir(self.state_dir)
        self.run_id = run_id or new_run_id()
        self.log_max_bytes = log_max_bytes
        self.read_only = read_only
        self.events = EventLog(None if read_only else self.state)
        self.locks = delivery.InputLocks(self.state)
        self._live: frozenset[str] = frozenset()
        self._live_at = float("-inf")
        self._live_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def socket(self) -> str:
        """The tmux socket name (`default` is the user's own server)."""
        return self.server.socket

    def session_name(self, stage: str, story_id: str) -> str:
        """`{prefix}-{stage}-{story}`; `1.1` becomes `1-1`."""
        return session_name(self.prefix, stage, story_id)

    def attach_instructions(self, name: str, *, read_only: bool = True) -> str:
        """The exact command to watch a session; read-only so a keystroke cannot steal input."""
        return attach_command(self.socket, name, read_only=read_only)

    # ---------------------------------------------------------------------------- spawn/adopt

    async def spawn(
        self,
        stage: str,
        story_id: str,
        *,
        profile: AgentProfile,
        prompt: str | None = None,
        attempt: int = 1,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        story_file: Path | None = None,
        adopt: bool = False,
        meta: Mapping[str, Any] | None = None,
        agent: str = "",
    ) -> AgentSession:
        """Start `profile`'s agent for `stage`/`story_id` in a fresh session.

        The agent works in `cwd` (default: the project), e.g. the story's own worktree. An
        existing session of the same name is killed first, unless `adopt` is set and it belongs
        to this manager's run, in which case it is adopted as it is (resume after the
        orchestrator died but tmux did not). A session of another run is never adopted: its
        output would answer a different prompt. `meta` (JSON-able) is stored on the session, so
        whoever adopts it later can read it.
        """
        name = self.session_name(stage, story_id)
        if await self.exists(name):
            if adopt and await self.adoptable(stage, story_id):
                return await self.adopt(name)
            await self.kill(name)
        if self.read_only:
            raise StateDirError("a read-only tmux manager cannot start sessions")
        start = functools.partial(
            start_session,
            self.server,
            self.state,
            self.events,
            project=cwd or self.project,
            run_id=self.run_id,
            log_max_bytes=self.log_max_bytes,
            name=name,
            stage=stage,
            story_id=story_id,
            profile=profile,
            prompt=prompt,
            attempt=attempt,
            env=env or {},
            story_file=story_file,
            meta=dict(meta or {}),
            agent=agent,
        )
        return await TMUX.run(start)

    def _record_path(self, name: str) -> Path:
        return record_path(self.state, name)

    async def adoptable(self, stage: str, story_id: str) -> bool:
        """Whether a live session of this stage and story belongs to this manager's run."""
        info = await self.info(self.session_name(stage, story_id))
        return info is not None and info.run_id == self.run_id

    async def adopt(self, name: str) -> AgentSession:
        """Take over a live session (e.g. after the orchestrator restarted) without touching it."""
        info = await self.info(name)
        if info is None:
            raise SessionNotFound(name)
        self.events.write("adopt", session=name, alive=info.alive, run=info.run_id)
        return info.as_session(adopted=True)

    # ---------------------------------------------------------------------------- inspect

    async def exists(self, name: str) -> bool:
        """Whether a session of exactly this name exists."""
        return await TMUX.run(self.server.exists, name)

    async def live_names(self, since: float) -> frozenset[str]:
        """Every session name on the server, listed at or after `since` (`time.monotonic()`).

        All waiting stages share one listing per interval instead of one tmux call each.
        """
        lock = self._live_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            if self._live_at < since:
                self._live_at = time.monotonic()
                self._live = await TMUX.run(self.server.session_names)
        return self._live

    async def info(self, name: str) -> SessionInfo | None:
        """Fresh facts about `name` from tmux, or None if there is no such session."""
        rows = await TMUX.run(self.server.sessions, self.prefix, name)
        return next((row for row in rows if row.name == name), None)

    async def list_sessions(self) -> list[SessionInfo]:
        """Every session of this prefix on the server, read from tmux (not from memory)."""
        return await TMUX.run(self.server.sessions, self.prefix)

    async def capture(
        self, name: str, start: int | None = None, end: int | None = None
    ) -> list[str]:
        """Pane text; `start`/`end` are tmux lines (negative = scrollback, None = screen edges)."""
        return await screen.capture(self.server, name, start, end)

    def probe(self, session: AgentSession) -> SessionProbe:
        """What a waiter needs to know about the session's agent while it waits."""
        return SessionProbe(self, session)

    # ---------------------------------------------------------------------------- input

    async def send_keys(
        self, name: str, keys: str, *, enter: bool = False, literal: bool = True
    ) -> None:
        """Send `keys` as they are (literal) or as tmux key names; Enter separately if asked."""
        await delivery.send_keys(
            self.server, self.locks, self.events, name, keys, enter=enter, literal=literal
        )

    async def deliver(
        self,
        session: AgentSession,
        text: str,
        profile: AgentProfile,
        *,
        confirm_timeout: float = delivery.CONFIRM_TIMEOUT,
    ) -> None:
        """Type `text` into the ready agent, exactly once, confirmed on screen."""
        await delivery.deliver(
            self.server,
            self.locks,
            self.events,
            session,
            text,
            profile,
            confirm_timeout=confirm_timeout,
        )

    async def steer(
        self, session: AgentSession, text: str, profile: AgentProfile, *, question: bool
    ) -> Literal["hook", "typed"]:
        """Give a stopped (or asking) agent `text`: through its CLI's hook, else typed."""
        return await delivery.steer(
            self.server, self.locks, self.events, session, text, profile, question=question
        )

    async def defer_question(
        self, session: AgentSession, text: str, profile: AgentProfile
    ) -> str | None:
        """Tell an asking agent that a person answers later; the question it asked."""
        return await delivery.defer_question(self.events, session, text, profile)

    # ---------------------------------------------------------------------------- kill

    async def kill(self, name: str, *, grace: float = KILL_GRACE) -> bool:
        """Terminate the session's processes (TERM, grace, KILL) and the session. Idempotent.

        A session that vanished from tmux (its server died) still has its processes killed,
        found through the record made at spawn. Returns whether a tmux session was killed.
        """
        return await TMUX.run(self._kill, name, grace)

    def _kill(self, name: str, grace: float) -> bool:
        started = time.monotonic()
        row, last = self.server.session_and_screen(self.prefix, name, -200)
        if row is None:
            if not self.read_only:
                self._reap(self._record_path(name), grace)
            return False
        if row.log_path is not None:
            with contextlib.suppress(OSError, StateDirError):
                write_private(row.log_path.with_suffix(".screen.txt"), "\n".join(last) + "\n")
        forced = terminate_session(row.pane_pid, grace) if row.pane_pid else []
        self.server.kill_session(name)
        if row.exit_file is not None:
            record = row.exit_file.with_name(f"{name}.proc.json")
            # What left the pane's process session (a CLI's detached daemon) still carries
            # the session's token: it ends with the session too, and nothing else does.
            forced += terminate_marked(_token(record), None, grace)
            remove_cwd_files(record)
            record.unlink(missing_ok=True)
        self.events.write(
            "kill",
            session=name,
            was_alive=row.alive,
            exit_status=row.exit_status,
            sigkilled=forced,
            ms=round((time.monotonic() - started) * 1000, 2),
        )
        return True

    def _reap(self, record_path: Path, grace: float) -> list[int]:
        """Kill what is left of a session that is gone from tmux; drop its record."""
        try:
            record = json.loads(read_private(record_path))
        except (OSError, ValueError):
            return []
        token, sid = str(record.get("token") or ""), record.get("sid")
        forced = terminate_marked(token, sid if isinstance(sid, int) else None, grace)
        remove_cwd_files(record_path)
        record_path.unlink(missing_ok=True)
        self.events.write("reap", session=record.get("session"), sigkilled=forced)
        return forced

    async def reap_vanished(self) -> list[str]:
        """Kill the leftover processes of this state dir's sessions that tmux no longer has.

        A tmux server can die (killed, OOM) while agents' descendants that ignore SIGHUP live
        on; nothing in tmux remembers them, the spawn records do.
        """
        folder = self.state_dir / "run"
        if self.read_only or not folder.is_dir():
            return []
        live = {row.name for row in await self.list_sessions()}
        reaped = []
        me = process_identity(os.getpid())
        for record in sorted(folder.glob("*.proc.json")):
            name = record.name.removesuffix(".proc.json")
            try:
                owner = str(json.loads(read_private(record)).get("owner") or "")
            except (OSError, ValueError):
                owner = ""
            if name not in live and (owner == me or not owner_alive(owner)):
                await TMUX.run(self._reap, record, KILL_GRACE)
                reaped.append(name)
        return reaped

    async def kill_all(self) -> list[str]:
        """Kill every session of this prefix on the server."""
        names = [row.name for row in await self.list_sessions()]
        await asyncio.gather(*(self.kill(name) for name in names))
        return names

    async def cleanup_orphans(self, max_age: float) -> list[str]:
        """Kill this prefix's orphans older than `max_age` seconds (left by a crashed run).

        A session whose orchestrator process is still alive is a live run's, never an orphan,
        whatever its age: a Dev stage may rightly run for hours.
        """
        old = [
            row.name
            for row in await self.list_sessions()
            if row.running_seconds > max_age and not row.owner_alive
        ]
        await asyncio.gather(*(self.kill(name) for name in old))
        if old:
            self.events.write("cleanup", sessions=old, max_age=max_age)
        return old


def _token(record: Path) -> str:
    try:
        return str(json.loads(read_private(record)).get("token") or "")
    except (OSError, ValueError, AttributeError):
        return ""


class SessionProbe:
    """A waiter's view of one agent session: has it exited, vanished, what does it show."""

    SESSION_CHECK_INTERVAL = 2.0  # seconds between "does the session still exist" tmux calls

    def __init__(self, manager: TmuxAgentManager, session: AgentSession) -> None:
        self.manager = manager
        self.session = session
        self.watched = [session.exit_file.parent, session.log_path.parent]
        self.activity = [session.log_path, session.exit_file]
        self._created = time.monotonic()  # the session existed then: it was spawned before
        self._next_check = self._created + self.SESSION_CHECK_INTERVAL

    def exited(self) -> int | None:
        """The agent's exit status, if its wrapper recorded one."""
        try:
            text = self.session.exit_file.read_text().strip()
        except OSError:
            return None
        return int(text) if text.lstrip("-").isdigit() else -1

    async def vanished(self) -> bool:
        """Whether the session is gone from tmux, from a list at most a few seconds old."""
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self.SESSION_CHECK_INTERVAL
        since = max(self._created, now - self.SESSION_CHECK_INTERVAL)
        return self.session.name not in await self.manager.live_names(since)

    async def screen(self) -> list[str]:
        """The last 40 non-blank lines: a dead pane pads its screen with blank rows."""
        try:
            lines = await self.manager.capture(self.session.name, -200)
        except Exception:
            return []
        return [line for line in lines if line.strip()][-40:]
