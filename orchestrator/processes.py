"""Killing everything an agent started, not just the tmux session.

`kill-session` only hangs up the pane's terminal: agents that ignore SIGHUP, and children that
moved to their own process group, survive it (AO #1234 leaked ptys that way). tmux makes the pane
command a session leader, so its session id is the pane pid and every descendant that did not call
`setsid` itself still carries it. We signal that whole session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

POLL_INTERVAL = 0.02


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid`, or whose process group is `sid`."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp session ...
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp, session = fields[0], int(fields[2]), int(fields[3])
        if state in ("Z", "X"):
            continue
        if sid in (session, pgrp):
            members.append(int(entry.name))
    if not members and not Path("/proc/self/stat").exists():
        # No /proc (macOS): fall back to the process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, 0)
            members.append(sid)
    return members


def terminate_session(sid: int, grace: float = 2.0) -> list[int]:
    """SIGTERM every member of session `sid`, wait up to `grace`, SIGKILL what is left.

    Returns the pids that had to be SIGKILLed. Waiting is a deadline on a condition (no member
    left), polled, never a fixed sleep.
    """
    _signal_all(session_members(sid), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (left := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
    if left:
        _signal_all(left, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while session_members(sid) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
    return left


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]  # field 22: start time in clock ticks


def process_identity(pid: int) -> str:
    """`pid:start-time`: names one process even after its pid is reused."""
    return f"{pid}:{_start_time(pid) or ''}"


def owner_alive(identity: str) -> bool:
    """Whether the process named by `process_identity` still runs (unknown owner: False)."""
    pid, _, start = identity.partition(":")
    if not pid.isdigit():
        return False
    current = _start_time(int(pid))
    return current is not None and (not start or current == start)
