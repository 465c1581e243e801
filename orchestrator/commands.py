"""Commands the orchestrator runs to completion (git, `git.setup`, a notice command) under a
whole-command deadline, each in a process group of its own.

`subprocess.run(timeout=...)` kills only the process it started: a merge driver, a filter or a
shell's child lives on and may hold a lock or a pipe. Here the whole group goes, SIGTERM first
(git then removes its own `index.lock`) and SIGKILL after a grace; and an interrupted run stops
every command still running (`stop_running`), so none outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

KILL_GRACE = 2.0  # seconds a stopped command gets to clean up (git: its lock files)

_RUNNING: set[subprocess.Popen[bytes]] = set()
_LOCK = threading.Lock()


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` to its end; past `timeout` s its group is stopped and TimeoutExpired raised.
    FileNotFoundError when the program does not exist, as `subprocess.run`."""
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    with _LOCK:
        _RUNNING.add(process)
    try:
        out, err = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        process.communicate()
        raise subprocess.TimeoutExpired(list(argv), timeout) from None
    finally:
        with _LOCK:
            _RUNNING.discard(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _stop(process: subprocess.Popen[bytes], grace: float = KILL_GRACE) -> None:
    """SIGTERM to the group, then SIGKILL to whatever of it is left after `grace` s (a child
    that ignores SIGTERM would hold the command's pipes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def stop_running() -> int:
    """Stop every command of this process still running, with what it started; how many."""
    with _LOCK:
        running = [process for process in _RUNNING if process.poll() is None]
    for process in running:
        _stop(process)
    return len(running)
