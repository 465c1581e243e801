"""A killed run's git debris: a lock some live process holds is never removed; a stale one is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import IsolationError
from orchestrator.git import Git
from orchestrator.git.recovery import clear_stale_lock, settle_own_checkout
from tests.helpers import git, git_repo, write


def lock_of(repo: Path) -> Path:
    return repo / git(repo, "rev-parse", "--git-path", "index.lock").strip()


def test_a_lock_held_open_by_a_live_process_is_kept_and_named(tmp_path: Path) -> None:
    repo = git_repo(write(tmp_path / "repo" / "a.txt", "a\n").parent)
    lock = lock_of(repo)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"f = open({str(lock)!r}, 'w'); print('held', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(IsolationError, match=rf"held by process {holder.pid}"):
            clear_stale_lock(Git(repo))
        assert lock.exists()
    finally:
        holder.communicate("\n", timeout=30)
    assert clear_stale_lock(Git(repo)) == f"removed a stale {lock} (left by a git that was killed)"
    assert not lock.exists()
    assert clear_stale_lock(Git(repo)) is None


def test_settling_leaves_untracked_files_and_a_clean_checkout_alone(tmp_path: Path) -> None:
    repo = git_repo(write(tmp_path / "repo" / "a.txt", "a\n").parent)
    write(repo / "copied-install.md", "untracked, kept\n")
    assert settle_own_checkout(Git(repo)) == []
    write(repo / "a.txt", "half written\n")
    said = settle_own_checkout(Git(repo))
    assert said == [f"restored {repo} to its last commit (a killed merge had written into it)"]
    assert (repo / "a.txt").read_text() == "a\n"
    assert (repo / "copied-install.md").read_text() == "untracked, kept\n"
