"""One live run per state dir: an OS lock held for the run's whole life.

Two runs of one epic would kill each other's agents and run stages twice. `flock` is released by
the kernel however the holder dies (SIGKILL included), so a lock is never stale; the file also
names its holder (pid, start time, run id) so a refused run can say who holds it. Read-only
commands read that name without taking the lock, so they never get in a run's way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import RunLockedError
from orchestrator.files import StateDir, open_private, read_private
from orchestrator.tmux.processes import owner_alive, process_identity

LOCK_FILE = "run.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or last held) a state dir's run lock."""

    pid: int
    identity: str
    run_id: str
    epic: str
    started_at: str
    host: str

    @property
    def alive(self) -> bool:
        """Whether the holder still runs on this host."""
        return self.host == socket.gethostname() and owner_alive(self.identity)

    def describe(self) -> str:
        """The holder, in words."""
        return f"run {self.run_id} (pid {self.pid} on {self.host}, started {self.started_at})"


def read_holder(state_dir: Path) -> LockHolder | None:
    """The holder named in the lock file, whether or not it still runs; never locks."""
    try:
        data: dict[str, Any] = json.loads(read_private(Path(state_dir) / LOCK_FILE))
        return LockHolder(
            pid=int(data["pid"]),
            identity=str(data["identity"]),
            run_id=str(data["run_id"]),
            epic=str(data["epic"]),
            started_at=str(data["started_at"]),
            host=str(data["host"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_holder(state_dir: Path) -> LockHolder | None:
    """The run holding the lock right now, if any (for `status` and friends)."""
    holder = read_holder(state_dir)
    return holder if holder is not None and holder.alive else None


class RunLock:
    """The state dir's run lock; `acquire` raises `RunLockedError` naming the live holder."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.path = state.root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, *, run_id: str, epic: str) -> None:
        """Take the lock or raise `RunLockedError` naming the live holder."""
        self.state.prepare()
        fd = open_private(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(self.state.root)
            who = holder.describe() if holder is not None else "another run (still starting)"
            raise RunLockedError(
                f"{who} holds {self.state.root}: one run at a time per state dir. "
                "Wait for it to end or stop it (Ctrl-C / kill its pid); read-only commands "
                "(status, sessions, validate, --dry-run) work meanwhile"
            ) from None
        me = process_identity(os.getpid())
        record = {
            "pid": os.getpid(),
            "identity": me,
            "run_id": run_id,
            "epic": epic,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd

    def rename(self, run_id: str) -> None:
        """Say which run holds the lock once the run id is known (a resume learns it late)."""
        if self._fd is None:
            return
        holder = read_holder(self.state.root)
        if holder is None:
            return
        record = {**holder.__dict__, "run_id": run_id}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(record).encode(), 0)

    def release(self) -> None:
        """Give the lock back (the kernel also does, however the process ends)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
