"""One tmux server, and the few tmux commands the runtime needs from it.

A private server (`tmux -L socket`) starts with no config file at all, so the user's
`~/.tmux.conf` (hooks, key tables) has no say over it; the socket `default` is the user's own
server, whose global options are never changed. Sessions are always targeted by exact name
(`=name`): `bmad-sm-1-1` never matches `bmad-sm-1-10`. Every call blocks: callers run them in a
worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket as sockets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import SessionNotFound, TmuxError
from orchestrator.tmux.model import SessionInfo
from orchestrator.tmux.names import socket_path

SERVER_RETRIES = 5
RETRY_STEP = 0.05
# Options read back from a session. `@bmad-agent` is what sessions started before the stage
# rename carry; it is still read so `--resume` and `cleanup` know them.
_FIELDS = (
    "session_name",
    "session_created",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "pane_dead_status",
    "@bmad-owner",
    "@bmad-stage",
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


class TmuxServer:
    """A tmux server by socket name; `default` is the user's own server."""

    def __init__(self, socket: str) -> None:
        import libtmux  # lazy: CLI start-up should not pay for it

        self.socket = socket
        if self.private:
            self.libtmux = libtmux.Server(socket_name=socket, config_file=os.devnull)
        else:
            self.libtmux = libtmux.Server()

    @property
    def private(self) -> bool:
        """Whether this is a server of ours (not the user's `default` one)."""
        return self.socket != "default"

    def run(self, *args: str, check: bool = True) -> list[str]:
        """One tmux command (or several chained with `;`); its stdout lines."""
        result = self.libtmux.cmd(*args)
        if check and result.stderr:
            raise TmuxError(f"tmux {args[0]}: {' '.join(result.stderr)}")
        return list(result.stdout)

    def run_retrying(self, *args: str, on_retry: Any = None) -> list[str]:
        """`run`, again when the call met a server that was exiting.

        tmux exits with its last session; a spawn right after the previous stage's kill can
        reach that server as it goes ("server exited unexpectedly"). The next try starts a new
        server.
        """
        for attempt in range(1, SERVER_RETRIES + 1):
            try:
                return self.run(*args)
            except TmuxError as exc:
                message = str(exc)
                if attempt == SERVER_RETRIES or not any(
                    sign in message for sign in ("server exited", "lost server")
                ):
                    raise
                if on_retry is not None:
                    on_retry(message)
                time.sleep(RETRY_STEP * attempt)  # back-off before asking a new server
        raise AssertionError("unreachable")

    def alive(self) -> bool:
        """Whether the server is running."""
        return bool(self.libtmux.is_alive())

    def exists(self, name: str) -> bool:
        """Whether a session of exactly this name exists."""
        return bool(self.libtmux.has_session(name, exact=True))

    def sessions(self, prefix: str, name: str | None = None) -> list[SessionInfo]:
        """Sessions whose name starts with `{prefix}-` (or the one called `name`), in one call."""
        args = ["list-panes", "-F", _FORMAT]
        args += ["-s", "-t", f"={name}"] if name else ["-a"]
        result = self.libtmux.cmd(*args)
        if result.stderr:
            joined = " ".join(result.stderr)
            if any(sign in joined for sign in _NO_SERVER):
                return []
            raise TmuxError(f"tmux list-panes: {joined}")
        now = time.time()
        rows = []
        for line in result.stdout:
            values = dict(zip(_FIELDS, line.split("\t"), strict=False))
            if not values.get("session_name", "").startswith(f"{prefix}-"):
                continue
            rows.append(_info(values, now))
        return rows

    def session_and_screen(
        self, prefix: str, name: str, start: int
    ) -> tuple[SessionInfo | None, list[str]]:
        """The session called `name` (if it is of `prefix`) and its pane text, in one call."""
        result = self.libtmux.cmd(
            *("list-panes", "-F", _FORMAT, "-s", "-t", f"={name}"),
            *(";", "capture-pane", "-p", "-J", "-t", f"={name}:", "-S", str(start)),
        )
        if not result.stdout:
            joined = " ".join(result.stderr)
            if not result.stderr or any(sign in joined for sign in _NO_SERVER):
                return None, []
            raise TmuxError(f"tmux list-panes: {joined}")
        values = dict(zip(_FIELDS, result.stdout[0].split("\t"), strict=False))
        if values.get("session_name") != name or not name.startswith(f"{prefix}-"):
            return None, []
        lines = list(result.stdout[1:])
        while lines and not lines[-1].strip():
            lines.pop()
        return _info(values, time.time()), lines

    def session_names(self) -> frozenset[str]:
        """The names of every session on the server (none when it is not running)."""
        result = self.libtmux.cmd("list-sessions", "-F", "#{session_name}")
        if result.stderr:
            joined = " ".join(result.stderr)
            if any(sign in joined for sign in _NO_SERVER):
                return frozenset()
            raise TmuxError(f"tmux list-sessions: {joined}")
        return frozenset(result.stdout)

    def capture(self, name: str, start: int | None = None, end: int | None = None) -> list[str]:
        """Pane text; `start`/`end` are tmux lines (negative = scrollback, None = screen edges)."""
        args = ["capture-pane", "-p", "-J", "-t", f"={name}:"]
        if start is not None:
            args += ["-S", str(start)]
        if end is not None:
            args += ["-E", str(end)]
        result = self.libtmux.cmd(*args)
        if result.stderr:
            raise SessionNotFound(f"{name}: {' '.join(result.stderr)}")
        lines = list(result.stdout)
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def kill_session(self, name: str) -> None:
        """Kill the session of exactly this name (quietly, if it is gone already)."""
        self.libtmux.cmd("kill-session", "-t", f"={name}")

    def remove_idle_socket(self) -> bool:
        """Remove our private server's socket file once the server has exited.

        tmux exits with its last session but leaves the socket file behind. A live server (of
        another run on the same socket) answers the connection and keeps its file.
        """
        if not self.private:
            return False
        path = socket_path(self.socket)
        probe = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
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

    def kill(self) -> None:
        """Kill this private server and remove its socket (never the user's own server)."""
        if not self.private:
            raise TmuxError("refusing to kill the user's default tmux server")
        with contextlib.suppress(Exception):
            self.libtmux.kill()
        socket_path(self.socket).unlink(missing_ok=True)


def _info(values: dict[str, str], now: float) -> SessionInfo:
    created = int(values.get("session_created") or 0)
    dead = values.get("pane_dead") == "1"
    log, exit_file = values.get("@bmad-log"), values.get("@bmad-exit")
    try:
        meta = json.loads(values.get("@bmad-meta") or "{}")
    except ValueError:
        meta = {}
    return SessionInfo(
        name=values["session_name"],
        stage=values.get("@bmad-stage") or values.get("@bmad-agent", ""),
        story_id=values.get("@bmad-story", ""),
        run_id=values.get("@bmad-run", ""),
        attempt=int(values.get("@bmad-attempt") or 0),
        started_at=datetime.fromtimestamp(created, UTC),
        running_seconds=max(0.0, now - created),
        pane_id=values.get("pane_id", ""),
        pane_pid=int(values["pane_pid"]) if values.get("pane_pid") else None,
        alive=not dead,
        exit_status=_exit_status(dead, values.get("pane_dead_status") or "", exit_file),
        log_path=Path(log) if log else None,
        exit_file=Path(exit_file) if exit_file else None,
        meta=meta if isinstance(meta, dict) else {},
        owner=values.get("@bmad-owner", ""),
    )


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
