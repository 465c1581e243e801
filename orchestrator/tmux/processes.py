"""Killing everything an agent started, not just the tmux session.

`kill-session` only hangs up the pane's terminal: agents that ignore SIGHUP, and children that
moved to their own process group, survive it. tmux makes the pane command a session leader, so
its session id is the pane pid and every descendant that did not call `setsid` itself still
carries it: we signal that whole session.

When the tmux server itself is gone there is no pane to ask, so each spawn also records its
process session and a random token put in the agent's environment (`BMAD_SESSION_TOKEN`),
outside tmux. What is left of a vanished session is then found by that record: members of its
session that carry the token, and any process of ours that carries it (even after `setsid`).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

POLL_INTERVAL = 0.02
TOKEN_VARIABLE = "BMAD_SESSION_TOKEN"
_PROC = Path("/proc")


def _has_proc() -> bool:
    return (_PROC / "self" / "stat").exists()


def _stat_fields(pid: str) -> list[str] | None:
    try:
        stat = (_PROC / pid / "stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name: state ppid pgrp session ...
    return stat[stat.rindex(")") + 2 :].split()


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid`, or whose process group is `sid`."""
    if not _has_proc():
        # No /proc (macOS): fall back to the process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, 0)
            return [sid]
        return []
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if sid in (int(fields[3]), int(fields[2])):
            members.append(int(entry.name))
    return members


def carries_token(pid: int, token: str) -> bool:
    """Whether process `pid` has our session token in its environment."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{TOKEN_VARIABLE}={token}".encode() in environ.split(b"\0")


def marked_processes(token: str, sid: int | None = None) -> list[int]:
    """Live processes of this user that carry `token` (members of `sid` first)."""
    if not _has_proc() or not token:
        return []
    uid = os.geteuid()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        fields = _stat_fields(entry.name)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if carries_token(int(entry.name), token):
            found.append(int(entry.name))
    if sid is not None:
        found.sort(key=lambda pid: pid != sid)
    return found


def terminate(members: Callable[[], list[int]], grace: float = 2.0) -> list[int]:
    """SIGTERM every process `members()` lists, wait up to `grace`, SIGKILL what is left.

    Returns the pids that had to be SIGKILLed. Waiting is a deadline on a condition (no member
    left): the kernel says when each one exits (a pidfd), so a quick exit costs no poll.
    """
    _signal_all(members(), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (left := members()) and time.monotonic() < deadline:
        wait_exits(left, deadline - time.monotonic())
    if left:
        _signal_all(left, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while (last := members()) and time.monotonic() < deadline:
            wait_exits(last, deadline - time.monotonic())
    return left


def wait_exits(pids: list[int], timeout: float) -> None:
    """Return once every process of `pids` has exited, or after `timeout` seconds.

    Without pidfds (not Linux, or an old kernel) it waits one poll interval instead.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        time.sleep(min(POLL_INTERVAL, max(0.0, timeout)))
        return
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(pidfd_open(pid))
            except ProcessLookupError:
                continue  # exited already
            except OSError:
                time.sleep(min(POLL_INTERVAL, max(0.0, timeout)))
                return
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        pending = len(fds)
        while pending and (remaining := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(remaining * 1000):
                poller.unregister(fd)
                pending -= 1
    finally:
        for fd in fds:
            os.close(fd)


def terminate_session(sid: int, grace: float = 2.0) -> list[int]:
    """Terminate process session `sid` (a live pane's): TERM, `grace`, KILL."""
    return terminate(lambda: session_members(sid), grace)


def terminate_marked(token: str, sid: int | None, grace: float = 2.0) -> list[int]:
    """Terminate what is left of a vanished session: every process carrying its token."""
    return terminate(lambda: marked_processes(token, sid), grace)


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _start_time(pid: int) -> str | None:
    fields = _stat_fields(str(pid))
    return fields[19] if fields is not None else None  # field 22: start time in clock ticks


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
