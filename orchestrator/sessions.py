"""The tmux side of the orchestrator: one session per agent stage, on a dedicated server.

What the seed sketch got wrong and this fixes:
- the agent is the window's command (argv, no shell, no `cd` typed by keys), so nothing races a
  shell's start-up;
- sessions are found by exact name (`=name`): `bmad-sm-1-1` never matches `bmad-sm-1-10`;
- metadata (agent, story, run, attempt, log) lives in tmux user options, so a second manager
  (after a restart) lists, inspects and adopts sessions without any in-memory dict;
- remain-on-exit keeps a crashed agent's last screen and exit status; the wrapper also writes the
  exit status to a file, which the output watcher sees within milliseconds;
- kill terminates the pane's whole process session, then the tmux session;
- pane output is piped to a log from the first byte (chained in the same tmux call as the spawn).

Every public operation is a coroutine that runs its tmux calls in a worker thread, so many sessions
can be driven from one event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import json
import os
import re
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.eventlog import EventLog
from orchestrator.files import PRIVATE_FILE_MODE, ensure_private_dir, write_private
from orchestrator.processes import owner_alive, process_identity, terminate_session
from orchestrator.profiles import AgentProfile

DEFAULT_SOCKET = "bmad"
DEFAULT_PREFIX = "bmad"
WINDOW_SIZE = (220, 50)
HISTORY_LIMIT = 10000
POLL_INTERVAL = 0.05

# The pane command. Constant text: user data (argv, prompt) only ever arrives as "$@", so nothing
# is interpreted by a shell. The subshell keeps the wrapper alive to record the agent's status.
WRAPPER_SCRIPT = (
    'unset CLAUDECODE TMUX TMUX_PANE; "$@"; rc=$?; '
    'printf "%s\\n" "$rc" > "$BMAD_EXIT_FILE"; exit "$rc"'
)
TMUX_CONF = f"set -g remain-on-exit on\nset -g history-limit {HISTORY_LIMIT}\n"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_FIELDS = (
    "session_name",
    "session_id",
    "session_created",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "pane_dead_status",
    "@bmad-owner",
    "@bmad-agent",
    "@bmad-story",
    "@bmad-run",
    "@bmad-attempt",
    "@bmad-log",
    "@bmad-exit",
    "@bmad-meta",
)
_FORMAT = "\t".join(f"#{{{f}}}" for f in _FIELDS)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]|\r")


_NO_SESSION = ("no server running", "can't find", "error connecting")


class TmuxError(RuntimeError):
    """A tmux command failed."""


class SessionNotFound(LookupError):
    """No session of that exact name on this manager's server."""


class DeliveryError(RuntimeError):
    """Typed text could not be delivered and confirmed."""


def sanitise(value: str) -> str:
    """Make `value` safe inside a tmux session name (`.` and `:` are target syntax)."""
    return _UNSAFE.sub("-", value)


@dataclass(frozen=True)
class AgentSession:
    """A spawned (or adopted) agent session and the files that belong to it."""

    name: str
    pane_id: str
    agent: str
    story_id: str
    run_id: str
    attempt: int
    log_path: Path
    exit_file: Path
    started_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    adopted: bool = False

    @property
    def screen_path(self) -> Path:
        return self.log_path.with_suffix(".screen.txt")


@dataclass(frozen=True)
class SessionInfo:
    """What tmux knows about one session, read fresh from the server."""

    name: str
    agent: str
    story_id: str
    run_id: str
    attempt: int
    started_at: datetime
    running_seconds: float
    exists: bool
    pane_id: str
    pane_pid: int | None
    alive: bool
    exit_status: int | None
    log_path: Path | None
    exit_file: Path | None
    meta: dict[str, Any] = field(default_factory=dict)
    owner: str = ""  # "pid:start" of the orchestrator process that spawned it

    @property
    def owner_alive(self) -> bool:
        """True while the process that spawned the session still runs (it is not an orphan)."""
        return owner_alive(self.owner)

    def as_session(self, *, adopted: bool = False) -> AgentSession:
        return AgentSession(
            name=self.name,
            pane_id=self.pane_id,
            agent=self.agent,
            story_id=self.story_id,
            run_id=self.run_id,
            attempt=self.attempt,
            log_path=self.log_path or Path(os.devnull),
            exit_file=self.exit_file or Path(os.devnull),
            started_at=self.started_at,
            meta=self.meta,
            adopted=adopted,
        )


class TmuxAgentManager:
    """Spawns, watches and kills agent sessions on one tmux server.

    `socket` names the server (`tmux -L socket`); the value `default` means the user's own server.
    """

    def __init__(
        self,
        project: Path,
        *,
        socket: str = DEFAULT_SOCKET,
        prefix: str = DEFAULT_PREFIX,
        state_dir: Path | None = None,
        run_id: str | None = None,
    ) -> None:
        import libtmux  # lazy: CLI start-up should not pay for it

        self.project = Path(project).resolve()
        self.socket = socket
        self.prefix = sanitise(prefix)
        self.state_dir = Path(state_dir or self.project / ".bmad-orchestrator").resolve()
        self.run_id = run_id or new_run_id()
        self.events = EventLog(self.state_dir / "events.jsonl")
        self._locks: dict[str, asyncio.Lock] = {}
        if socket == "default":
            self.server = libtmux.Server()
        else:
            conf = self.state_dir / "tmux.conf"
            write_private(conf, TMUX_CONF)
            self.server = libtmux.Server(socket_name=socket, config_file=str(conf))

    # ----------------------------------------------------------------- names and tmux plumbing

    def session_name(self, agent: str, story_id: str) -> str:
        """`{prefix}-{agent}-{story}`; `1.1` becomes `1-1`."""
        return f"{self.prefix}-{sanitise(agent)}-{sanitise(story_id)}"

    def attach_instructions(self, name: str, *, read_only: bool = True) -> str:
        """The exact command to watch a session; read-only so a keystroke cannot steal input."""
        socket = [] if self.socket == "default" else ["-L", self.socket]
        flags = ["-r"] if read_only else []
        return shlex.join(["tmux", *socket, "attach", *flags, "-t", f"={name}"])

    def _tmux(self, *args: str, check: bool = True) -> builtins.list[str]:
        result = self.server.cmd(*args)
        if check and result.stderr:
            raise TmuxError(f"tmux {args[0]}: {' '.join(result.stderr)}")
        return list(result.stdout)

    def _paths(self, name: str, attempt: int) -> tuple[Path, Path]:
        logs = ensure_private_dir(self.state_dir / "logs" / self.run_id)
        run = ensure_private_dir(self.state_dir / "run")
        return logs / f"{name}.{attempt}.log", run / f"{name}.exit"

    # ---------------------------------------------------------------------------- spawn/adopt

    async def spawn(
        self,
        agent: str,
        story_id: str,
        *,
        profile: AgentProfile,
        prompt: str | None = None,
        attempt: int = 1,
        env: Mapping[str, str] | None = None,
        story_file: Path | None = None,
        adopt: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> AgentSession:
        """Start `profile`'s agent for `agent`/`story_id` in a fresh session.

        An existing session of the same name is killed first, unless `adopt` is set and it
        belongs to this manager's run, in which case it is adopted as it is (resume after the
        orchestrator died but tmux did not). A session of another run is never adopted: its
        output would answer a different prompt. `meta` (JSON-able) is stored on the session, so
        whoever adopts it later can read it.
        """
        name = self.session_name(agent, story_id)
        if await asyncio.to_thread(self._exists, name):
            if adopt:
                info = await self.info(name)
                if info is not None and info.run_id == self.run_id:
                    return await self.adopt(name)
            await self.kill(name)
        return await asyncio.to_thread(
            self._spawn,
            name,
            agent,
            story_id,
            profile,
            prompt,
            attempt,
            env or {},
            story_file,
            dict(meta or {}),
        )

    def _spawn(
        self,
        name: str,
        agent: str,
        story_id: str,
        profile: AgentProfile,
        prompt: str | None,
        attempt: int,
        env: Mapping[str, str],
        story_file: Path | None,
        meta: dict[str, Any],
    ) -> AgentSession:
        started = time.monotonic()
        log_path, exit_file = self._paths(name, attempt)
        exit_file.unlink(missing_ok=True)
        os.close(os.open(log_path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
        if prompt is not None and profile.prompt_via_argv and len(prompt) > profile.max_argv_prompt:
            prompt = self._prompt_pointer(name, attempt, prompt)
        environment = {
            **profile.env,
            **env,
            "BMAD_STAGE": agent,
            "BMAD_STORY_ID": story_id,
            "BMAD_PROJECT": str(self.project),
            "BMAD_STATE_DIR": str(self.state_dir),
            "BMAD_RUN_ID": self.run_id,
            "BMAD_ATTEMPT": str(attempt),
            "BMAD_EXIT_FILE": str(exit_file),
        }
        if story_file is not None:
            environment["BMAD_STORY_FILE"] = str(story_file)
        argv = ["/bin/sh", "-c", WRAPPER_SCRIPT, "bmad-agent", *profile.argv(prompt)]
        env_args = [arg for key, value in environment.items() for arg in ("-e", f"{key}={value}")]
        options = {
            "@bmad-agent": agent,
            "@bmad-story": story_id,
            "@bmad-run": self.run_id,
            "@bmad-attempt": str(attempt),
            "@bmad-log": str(log_path),
            "@bmad-exit": str(exit_file),
            "@bmad-meta": json.dumps(meta),
            "@bmad-owner": process_identity(os.getpid()),
        }
        chained: list[str] = []
        for key, value in options.items():
            chained += [";", "set-option", "-t", f"={name}:", key, value]
        width, height = WINDOW_SIZE
        out = self._tmux(
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_id}\t#{session_created}",
            "-s",
            name,
            "-n",
            f"{agent}-{sanitise(story_id)}",
            "-c",
            str(self.project),
            "-x",
            str(width),
            "-y",
            str(height),
            *env_args,
            *argv,
            # Same tmux call: nothing the agent prints before these run can be lost.
            ";",
            "set-option",
            "-w",
            "-t",
            f"={name}:",
            "remain-on-exit",
            "on",
            ";",
            "pipe-pane",
            "-t",
            f"={name}:",
            f"cat >> {shlex.quote(str(log_path))}",
            *chained,
        )
        pane_id, created = out[0].split("\t")
        session = AgentSession(
            name=name,
            pane_id=pane_id,
            agent=agent,
            story_id=story_id,
            run_id=self.run_id,
            attempt=attempt,
            log_path=log_path,
            exit_file=exit_file,
            started_at=datetime.fromtimestamp(int(created), UTC),
            meta=meta,
        )
        self.events.write(
            "spawn",
            session=name,
            agent=agent,
            story=story_id,
            attempt=attempt,
            profile=profile.name,
            argv=profile.argv(None),
            prompt_bytes=len(prompt.encode()) if prompt else 0,
            log=str(log_path),
            ms=round((time.monotonic() - started) * 1000, 2),
        )
        return session

    def _prompt_pointer(self, name: str, attempt: int, prompt: str) -> str:
        path = ensure_private_dir(self.state_dir / "prompts" / self.run_id) / f"{name}.{attempt}.md"
        write_private(path, prompt)
        return f"Read the file {path} and follow the instructions in it exactly."

    async def adopt(self, name: str) -> AgentSession:
        """Take over a live session (e.g. after the orchestrator restarted) without touching it."""
        info = await self.info(name)
        if info is None:
            raise SessionNotFound(name)
        self.events.write("adopt", session=name, alive=info.alive, run=info.run_id)
        return info.as_session(adopted=True)

    # ------------------------------------------------------------------------- inspect

    def _exists(self, name: str) -> bool:
        return bool(self.server.has_session(name, exact=True))

    async def exists(self, name: str) -> bool:
        return await asyncio.to_thread(self._exists, name)

    def _rows(self, target: str | None) -> builtins.list[SessionInfo]:
        args = ["list-panes", "-F", _FORMAT]
        args += ["-s", "-t", f"={target}"] if target else ["-a"]
        result = self.server.cmd(*args)
        if result.stderr:
            joined = " ".join(result.stderr)
            if (
                "no server running" in joined
                or "can't find" in joined
                or "error connecting" in joined
            ):
                return []
            raise TmuxError(f"tmux list-panes: {joined}")
        now = time.time()
        rows = []
        for line in result.stdout:
            values = dict(zip(_FIELDS, line.split("\t"), strict=False))
            if not values.get("session_name", "").startswith(f"{self.prefix}-"):
                continue
            created = int(values.get("session_created") or 0)
            dead = values.get("pane_dead") == "1"
            status = values.get("pane_dead_status") or ""
            log, exit_file = values.get("@bmad-log"), values.get("@bmad-exit")
            try:
                meta = json.loads(values.get("@bmad-meta") or "{}")
            except ValueError:
                meta = {}
            rows.append(
                SessionInfo(
                    name=values["session_name"],
                    agent=values.get("@bmad-agent", ""),
                    story_id=values.get("@bmad-story", ""),
                    run_id=values.get("@bmad-run", ""),
                    attempt=int(values.get("@bmad-attempt") or 0),
                    started_at=datetime.fromtimestamp(created, UTC),
                    running_seconds=max(0.0, now - created),
                    exists=True,
                    pane_id=values.get("pane_id", ""),
                    pane_pid=int(values["pane_pid"]) if values.get("pane_pid") else None,
                    alive=not dead,
                    exit_status=int(status) if dead and status.lstrip("-").isdigit() else None,
                    log_path=Path(log) if log else None,
                    exit_file=Path(exit_file) if exit_file else None,
                    meta=meta if isinstance(meta, dict) else {},
                    owner=values.get("@bmad-owner", ""),
                )
            )
        return rows

    async def info(self, name: str) -> SessionInfo | None:
        """Fresh facts about `name` from tmux, or None if there is no such session."""
        rows = await asyncio.to_thread(self._rows, name)
        return next((row for row in rows if row.name == name), None)

    async def list(self) -> builtins.list[SessionInfo]:
        """Every session of this prefix on the server, read from tmux (not from memory)."""
        return await asyncio.to_thread(self._rows, None)

    async def capture(
        self, name: str, start: int | None = None, end: int | None = None
    ) -> builtins.list[str]:
        """Pane text; `start`/`end` are tmux lines (negative = scrollback, None = screen edges)."""
        return await asyncio.to_thread(self._capture, name, start, end)

    def _capture(self, name: str, start: int | None, end: int | None) -> builtins.list[str]:
        args = ["capture-pane", "-p", "-J", "-t", f"={name}:"]
        if start is not None:
            args += ["-S", str(start)]
        if end is not None:
            args += ["-E", str(end)]
        result = self.server.cmd(*args)
        if result.stderr:
            raise SessionNotFound(f"{name}: {' '.join(result.stderr)}")
        lines = list(result.stdout)
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    # ------------------------------------------------------------------------- input

    async def send_keys(
        self, name: str, keys: str, *, enter: bool = False, literal: bool = True
    ) -> None:
        """Send `keys` as they are (literal) or as tmux key names; Enter separately if asked."""
        async with self._lock(name):
            await asyncio.to_thread(self._send_keys, name, keys, enter, literal)

    def _send_keys(self, name: str, keys: str, enter: bool, literal: bool) -> None:
        target = f"={name}:"
        self._tmux("send-keys", "-t", target, *(["-l"] if literal else []), "--", keys)
        if enter:
            self._tmux("send-keys", "-t", target, "Enter")
        self.events.write("send", session=name, bytes=len(keys.encode()), enter=enter)

    def _lock(self, name: str) -> _SessionLock:
        lock = self._locks.setdefault(name, asyncio.Lock())
        return _SessionLock(lock, ensure_private_dir(self.state_dir / "run") / f"{name}.lock")

    async def wait_for_screen(
        self, name: str, predicate: Any, *, timeout: float, start: int | None = None
    ) -> builtins.list[str] | None:
        """Poll the pane until `predicate(lines)` holds; None at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            screen = await self.capture(name, start)
            if predicate(screen):
                return screen
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(POLL_INTERVAL)

    async def wait_until_ready(self, session: AgentSession, profile: AgentProfile) -> bool:
        """Answer known first-run dialogs until the profile's ready pattern shows.

        Returns False at the profile's ready deadline, or when the agent exited first.
        """
        deadline = time.monotonic() + profile.ready_timeout
        answered: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                screen = await self.capture(session.name)
            except SessionNotFound:
                return False
            dialog = profile.first_dialog(screen)
            if dialog is not None and answered.get(dialog.name, 0) < 3:
                answered[dialog.name] = answered.get(dialog.name, 0) + 1
                for key in dialog.keys:
                    await self.send_keys(session.name, key, literal=False)
                self.events.write("dialog", session=session.name, dialog=dialog.name)
                # Wait for the dialog to go before looking again, so it is answered once.
                await self.wait_for_screen(
                    session.name,
                    lambda s, d=dialog: d.pattern.search("\n".join(s)) is None,
                    timeout=min(5.0, max(0.0, deadline - time.monotonic())),
                )
                continue
            if profile.is_ready(screen):
                self.events.write("ready", session=session.name)
                return True
            if session.exit_file.exists():
                return False
            await asyncio.sleep(POLL_INTERVAL)
        self.events.write("ready-timeout", session=session.name, seconds=profile.ready_timeout)
        return False

    async def deliver(
        self,
        session: AgentSession,
        text: str,
        profile: AgentProfile,
        *,
        confirm_timeout: float = 2.0,
        enter_retries: int = 3,
    ) -> None:
        """Type `text` into a ready agent: one bracketed paste, then Enter, confirmed on screen.

        The text is sent exactly once; only Enter is retried (at most `enter_retries` times),
        because a lost Enter strands the prompt while a resent text duplicates it.
        """
        from orchestrator.delivery import deliver_text

        if not await self.wait_until_ready(session, profile):
            raise DeliveryError(f"{session.name}: agent not ready within {profile.ready_timeout}s")
        async with self._lock(session.name):
            await deliver_text(
                self,
                session,
                text,
                profile,
                confirm_timeout=confirm_timeout,
                enter_retries=enter_retries,
            )

    # ------------------------------------------------------------------------- kill

    async def kill(self, name: str, *, grace: float = 2.0) -> bool:
        """Terminate the session's processes (TERM, grace, KILL) and the session. Idempotent."""
        return await asyncio.to_thread(self._kill, name, grace)

    def _kill(self, name: str, grace: float) -> bool:
        rows = [row for row in self._rows(name) if row.name == name]
        if not rows:
            return False
        row = rows[0]
        started = time.monotonic()
        if row.log_path is not None:
            with contextlib.suppress(SessionNotFound, OSError):
                screen = self._capture(name, -200, None)
                write_private(row.log_path.with_suffix(".screen.txt"), "\n".join(screen) + "\n")
        forced = terminate_session(row.pane_pid, grace) if row.pane_pid else []
        self.server.cmd("kill-session", "-t", f"={name}")
        self.events.write(
            "kill",
            session=name,
            was_alive=row.alive,
            exit_status=row.exit_status,
            sigkilled=forced,
            ms=round((time.monotonic() - started) * 1000, 2),
        )
        return True

    async def kill_all(self) -> builtins.list[str]:
        """Kill every session of this prefix on the server."""
        names = [row.name for row in await self.list()]
        await asyncio.gather(*(self.kill(name) for name in names))
        return names

    async def cleanup_orphans(self, max_age: float) -> builtins.list[str]:
        """Kill this prefix's orphans older than `max_age` seconds (left by a crashed run).

        A session whose orchestrator process is still alive is a live run's, never an orphan,
        whatever its age: a Dev stage may rightly run for hours.
        """
        old = [
            row.name
            for row in await self.list()
            if row.running_seconds > max_age and not row.owner_alive
        ]
        await asyncio.gather(*(self.kill(name) for name in old))
        if old:
            self.events.write("cleanup", sessions=old, max_age=max_age)
        return old

    def kill_server(self) -> None:
        """Kill this manager's own server (tests, never the user's `default` server)."""
        if self.socket == "default":
            raise TmuxError("refusing to kill the user's default tmux server")
        with contextlib.suppress(Exception):
            self.server.kill()
        socket_dir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (socket_dir / self.socket).unlink(missing_ok=True)

    # ------------------------------------------------------------------------- streaming

    async def stream(
        self, session: AgentSession, *, from_start: bool = False
    ) -> AsyncIterator[str]:
        """New output lines of a session (ANSI stripped), following its log file.

        Ends when the session is gone and the log has been read to the end.
        """
        from orchestrator.waiting import shared_watcher

        watcher = shared_watcher()
        with (
            watcher.subscribe([session.log_path.parent]) as changes,
            session.log_path.open("rb") as handle,
        ):
            if not from_start:
                handle.seek(0, os.SEEK_END)
            pending = b""
            while True:
                chunk = await asyncio.to_thread(handle.read)
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield _ANSI.sub("", line.decode(errors="replace"))
                    continue
                if not await self.exists(session.name):
                    if pending:
                        yield _ANSI.sub("", pending.decode(errors="replace"))
                    return
                await changes.wait()


class _SessionLock:
    """An asyncio lock plus an flock, so two senders (even in two processes) never interleave."""

    def __init__(self, lock: asyncio.Lock, path: Path) -> None:
        self._lock = lock
        self._path = path
        self._fd: int | None = None

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            self._fd = os.open(self._path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE)
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


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
