"""What a killed run leaves in its checkouts (an `index.lock`, a half merge), found and cleared.

A git killed with SIGKILL (or by a reboot) leaves `index.lock`, and every later git command in
that checkout fails until it is gone; a merge killed half way leaves `MERGE_HEAD` or
half-written files. The lock is removed only when no live process has it open (read from
`/proc`; without `/proc`, only once it is older than any git command of ours may run). The
integration checkout belongs to the orchestrator alone, so a half merge there is undone; a story
worktree's merge in progress is its Dev's to resolve and is left as it is.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.errors import IsolationError
from orchestrator.git.repo import GIT_TIMEOUT, Git

PROC = Path("/proc")


def holders(path: Path) -> list[int]:
    """Pids of the live processes that have `path` open (those this user may look at)."""
    target = os.path.realpath(path)
    found: list[int] = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone meanwhile, or another user's
            continue
        if target in links:
            found.append(int(entry.name))
    return found


def clear_stale_lock(git: Git) -> str | None:
    """Remove the checkout's `index.lock` if it is stale; says so. IsolationError while
    it is held (exit 2 at the start of a run: nothing was changed)."""
    lock = git.cwd / git.run("rev-parse", "--git-path", "index.lock").strip()
    try:
        age = time.time() - lock.lstat().st_mtime
    except FileNotFoundError:
        return None
    if PROC.is_dir():
        if pids := holders(lock):
            raise IsolationError(
                f"{lock} is held by process {', '.join(map(str, pids))}: let it finish or stop "
                "it, then run again"
            )
    elif age < GIT_TIMEOUT:
        raise IsolationError(
            f"{lock} is {age:.0f} s old and may belong to a running git: if none runs there, "
            "remove it, then run again"
        )
    lock.unlink(missing_ok=True)
    return f"removed a stale {lock} (left by a git that was killed)"


def settle_own_checkout(git: Git) -> list[str]:
    """The integration checkout back at its branch's last commit: a stale lock removed, a half
    merge aborted, half-written tracked files restored. Untracked files (install copies) stay."""
    said = [note] if (note := clear_stale_lock(git)) else []
    if git.merging():
        git.run("merge", "--abort")
        said.append(f"aborted a merge a killed run left in {git.cwd}")
    if git.lines("status", "--porcelain=v1", "-z", "--untracked-files=no"):
        git.run("reset", "--quiet", "--hard", "HEAD")
        said.append(f"restored {git.cwd} to its last commit (a killed merge had written into it)")
    return said
