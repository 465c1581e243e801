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
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.defaults import (
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_PREFIX,
    DEFAULT_SOCKET,
    STATE_DIR_NAME,
)
from orchestrator.errors import DeliveryError, SessionNotFound, StateDirError, TmuxError
from orchestrator.eventlog import EventLog
from orchestrator.files import (
    StateDir,
    open_private,
    read_private,
    touch_private,
    write_private,
)
from orchestrator.processes import (
    TOKEN_VARIABLE,
    owner_alive,
    process_identity,
    terminate_marked,
    terminate_session,
)
from orchestrator.profiles import CLAUDE_NESTING_VARIABLES, AgentProfile

WINDOW_SIZE = (220, 50)
HISTORY_LIMIT = 10000
POLL_INTERVAL = 0.05
SERVER_RETRIES = 5
# tmux refuses a command of more than about 16 KB; argv, environment and options share it.
MAX_ARGV_PROMPT_BYTES = 8000
LOGCAP = Path(__file__).with_name("logcap.py")

# The pane command. Constant text: user data (argv, prompt) only ever arrives as "$@", so nothing
# is interpreted by a shell. The subshell keeps the wrapper alive to record the agent's status.
WRAPPER_SCRIPT = (
    f'unset {" ".join(CLAUDE_NESTING_VARIABLES)} TMUX TMUX_PANE; "$@"; rc=$?; '
    'printf "%s\\n" "$rc" > "$BMAD_EXIT_FILE"; exit "$rc"'
)

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
# What tmux says when there is nothing to list: no server, a dying one, no such session.
_NO_SERVER = (
    "no server running",
    "server exited",
    "no current target",
    "can't find",
    "error connecting",
)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]|\r")


def sanitise(value: str) -> str:
    """Make `value` safe inside a tmux session name (`.` and `:` are target syntax)."""
    return _UNSAFE.sub("-", value)


def tmux_literal(value: str) -> str:
    """Escape `value` for a tmux argument that tmux expands formats in (`#S`, `#(cmd)`).

    tmux expands formats in `-c` start directories, window names, `pipe-pane` commands and
    `load-buffer` paths; a path such as `/repo/#(touch x)` would otherwise run a command.
    """
    return value.replace("#", "##")


def socket_path(socket: str) -> Path:
    """Where tmux puts the socket file of `tmux -L socket`."""
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.geteuid()}" / socket


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

    @property
    def turn_end_file(self) -> Path:
        """Written by the agent (or its CLI's hook) at the end of each turn."""
        return self.exit_file.with_name(f"{self.name}.turn")

    @property
    def attention_file(self) -> Path:
        """Written by the agent (or its CLI's hook) when it needs a person."""
        return self.exit_file.with_name(f"{self.name}.attention")


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
        import libtmux  # lazy: CLI start-up should not pay for it

        self.project = Path(project).resolve()
        self.socket = socket
        self.prefix = sanitise(prefix)
        self.state_dir = Path(os.path.abspath(state_dir or self.project / STATE_DIR_NAME))
        self.state = StateDir(self.state_dir)
        self.run_id = run_id or new_run_id()
        self.log_max_bytes = log_max_bytes
        self.read_only = read_only
        self.events = EventLog(None if read_only else self.state)
        self._locks: dict[str, asyncio.Lock] = {}
        if socket == "default":
            self.server = libtmux.Server()
        else:
            # No config file at all: the user's ~/.tmux.conf (hooks, key tables) has no say on
            # our private server; the options we need are set in the spawn call itself.
            self.server = libtmux.Server(socket_name=socket, config_file=os.devnull)

    # ----------------------------------------------------------------- names and tmux plumbing

    def session_name(self, agent: str, story_id: str) -> str:
        """`{prefix}-{agent}-{story}`; `1.1` becomes `1-1`."""
        return f"{self.prefix}-{sanitise(agent)}-{sanitise(story_id)}"

    def attach_instructions(self, name: str, *, read_only: bool = True) -> str:
        """The exact command to watch a session; read-only so a keystroke cannot steal input."""
        socket = [] if self.socket == "default" else ["-L", self.socket]
        flags = ["-r"] if read_only else []
        return shlex.join(["tmux", *socket, "attach", *flags, "-t", f"={sanitise(name)}"])

    def _tmux(self, *args: str, check: bool = True) -> builtins.list[str]:
        result = self.server.cmd(*args)
        if check and result.stderr:
            raise TmuxError(f"tmux {args[0]}: {' '.join(result.stderr)}")
        return list(result.stdout)

    def _tmux_retrying(self, *args: str) -> builtins.list[str]:
        """`_tmux`, again when the call met a server that was exiting.

        tmux exits with its last session; a spawn right after the previous stage's kill can
        reach that server as it goes ("server exited unexpectedly"). The next try starts a new
        server.
        """
        for attempt in range(1, SERVER_RETRIES + 1):
            try:
                return self._tmux(*args)
            except TmuxError as exc:
                if attempt == SERVER_RETRIES or not any(
                    sign in str(exc) for sign in ("server exited", "lost server")
                ):
                    raise
                self.events.write("tmux-retry", command=args[0], error=str(exc))
                time.sleep(POLL_INTERVAL * attempt)  # back-off before asking a new server
        raise AssertionError("unreachable")

    def _paths(self, name: str, attempt: int) -> tuple[Path, Path]:
        if self.read_only:
            raise StateDirError("a read-only tmux manager cannot start sessions")
        logs = self.state.folder(Path("logs") / self.run_id)
        run = self.state.folder("run")
        return logs / f"{name}.{attempt}.log", run / f"{name}.exit"

    def _record_path(self, name: str) -> Path:
        return self.state_dir / "run" / f"{name}.proc.json"

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
        turn_end_file = exit_file.with_name(f"{name}.turn")
        attention_file = exit_file.with_name(f"{name}.attention")
        for stale in (exit_file, turn_end_file, attention_file):
            stale.unlink(missing_ok=True)  # a planted link is removed, never written through
        touch_private(log_path)
        settings_path: Path | None = None
        if (settings := profile.settings()) is not None:
            settings_path = exit_file.with_name(f"{name}.settings.json")
            write_private(settings_path, settings)
        if (
            prompt is not None
            and profile.prompt_via_argv
            and (profile.prompt_via == "file" or len(prompt.encode()) > profile.max_argv_prompt)
        ):
            prompt = self._prompt_pointer(name, attempt, prompt)
        token = uuid.uuid4().hex
        record_path = self._record_path(name)
        owner = process_identity(os.getpid())
        record = {"session": name, "token": token, "sid": None, "owner": owner}
        write_private(record_path, json.dumps(record))
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
            "BMAD_TURN_END_FILE": str(turn_end_file),
            "BMAD_ATTENTION_FILE": str(attention_file),
            TOKEN_VARIABLE: token,
        }
        if story_file is not None:
            environment["BMAD_STORY_FILE"] = str(story_file)
        agent_argv = profile.argv(prompt, settings=settings_path)
        argv = ["/bin/sh", "-c", WRAPPER_SCRIPT, "bmad-agent", *agent_argv]
        env_args = [arg for key, value in environment.items() for arg in ("-e", f"{key}={value}")]
        options = {
            "@bmad-agent": agent,
            "@bmad-story": story_id,
            "@bmad-run": self.run_id,
            "@bmad-attempt": str(attempt),
            "@bmad-log": str(log_path),
            "@bmad-exit": str(exit_file),
            "@bmad-meta": json.dumps(meta),
            "@bmad-owner": owner,
        }
        chained: list[str] = []
        for key, value in options.items():
            chained += [";", "set-option", "-t", f"={name}:", key, value]
        server_options: list[str] = []
        if self.socket != "default":
            # Before the pane exists: history-limit applies at creation, and remain-on-exit
            # must hold even for an agent that exits at once.
            server_options = [
                "start-server",
                ";",
                "set-option", "-g", "history-limit", str(HISTORY_LIMIT),
                ";",
                "set-option", "-g", "remain-on-exit", "on",
                ";",
            ]  # fmt: skip
        capped = shlex.join(
            [sys.executable, "-I", "-S", str(LOGCAP), str(log_path), str(self.log_max_bytes)]
        )
        width, height = WINDOW_SIZE
        out = self._tmux_retrying(
            *server_options,
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_id}\t#{session_created}\t#{pane_pid}",
            "-s",
            name,
            "-n",
            tmux_literal(f"{sanitise(agent)}-{sanitise(story_id)}"),
            "-c",
            tmux_literal(str(self.project)),
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
            tmux_literal(f"exec {capped}"),
            *chained,
        )
        pane_id, created, pane_pid = out[0].split("\t")
        write_private(record_path, json.dumps({**record, "sid": int(pane_pid)}))
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
            argv=profile.argv(None, settings=settings_path),
            prompt_bytes=len(prompt.encode()) if prompt else 0,
            log=str(log_path),
            ms=round((time.monotonic() - started) * 1000, 2),
        )
        return session

    def _prompt_pointer(self, name: str, attempt: int, prompt: str) -> str:
        folder = self.state.folder(Path("prompts") / self.run_id)
        path = folder / f"{name}.{attempt}.md"
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
            if any(sign in joined for sign in _NO_SERVER):
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
                    exit_status=_exit_status(dead, status, exit_file),
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

    async def list_sessions(self) -> builtins.list[SessionInfo]:
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
        return _SessionLock(lock, self.state.folder("run") / f"{name}.lock")

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
        """Terminate the session's processes (TERM, grace, KILL) and the session. Idempotent.

        A session that vanished from tmux (its server died) still has its processes killed,
        found through the record made at spawn. Returns whether a tmux session was killed.
        """
        return await asyncio.to_thread(self._kill, name, grace)

    def _kill(self, name: str, grace: float) -> bool:
        rows = [row for row in self._rows(name) if row.name == name]
        if not rows:
            if not self.read_only:
                self._reap(self._record_path(name), grace)
            return False
        row = rows[0]
        started = time.monotonic()
        if row.log_path is not None:
            with contextlib.suppress(SessionNotFound, OSError, StateDirError):
                screen = self._capture(name, -200, None)
                write_private(row.log_path.with_suffix(".screen.txt"), "\n".join(screen) + "\n")
        forced = terminate_session(row.pane_pid, grace) if row.pane_pid else []
        self.server.cmd("kill-session", "-t", f"={name}")
        if row.exit_file is not None:
            row.exit_file.with_name(f"{name}.proc.json").unlink(missing_ok=True)
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
        record_path.unlink(missing_ok=True)
        self.events.write("reap", session=record.get("session"), sigkilled=forced)
        return forced

    async def reap_vanished(self) -> builtins.list[str]:
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
        for record_path in sorted(folder.glob("*.proc.json")):
            name = record_path.name.removesuffix(".proc.json")
            try:
                owner = str(json.loads(read_private(record_path)).get("owner") or "")
            except (OSError, ValueError):
                owner = ""
            if name not in live and (owner == me or not owner_alive(owner)):
                await asyncio.to_thread(self._reap, record_path, 2.0)
                reaped.append(name)
        return reaped

    async def kill_all(self) -> builtins.list[str]:
        """Kill every session of this prefix on the server."""
        names = [row.name for row in await self.list_sessions()]
        await asyncio.gather(*(self.kill(name) for name in names))
        return names

    async def cleanup_orphans(self, max_age: float) -> builtins.list[str]:
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

    def remove_idle_socket(self) -> bool:
        """Remove our private server's socket file once the server has exited.

        tmux exits with its last session but leaves the socket file behind. A live server (of
        another run on the same socket) answers the connection and keeps its file.
        """
        if self.socket == "default":
            return False
        path = socket_path(self.socket)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
            return True
        except OSError:
            return False
        finally:
            probe.close()
        return False

    def kill_server(self) -> None:
        """Kill this manager's own server (tests, never the user's `default` server)."""
        if self.socket == "default":
            raise TmuxError("refusing to kill the user's default tmux server")
        with contextlib.suppress(Exception):
            self.server.kill()
        socket_path(self.socket).unlink(missing_ok=True)

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


def _exit_status(dead: bool, status: str, exit_file: str | None) -> int | None:
    """A dead pane's exit status. tmux sees the pane's terminal close before it reaps the
    process, so for a moment `pane_dead_status` is empty: the wrapper's exit file knows."""
    if not dead:
        return None
    if status.lstrip("-").isdigit():
        return int(status)
    if exit_file:
        with contextlib.suppress(OSError, ValueError):
            return int(Path(exit_file).read_text().strip())
    return None


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
