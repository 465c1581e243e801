"""Blocking work: own bounded threads per kind, whole-operation deadlines, never a deaf exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator.blocking import Pool
from orchestrator.commands import stop_running
from orchestrator.errors import DeadlineExceeded, GitError
from orchestrator.git import Git
from tests.helpers import git, git_repo, gone, write


async def test_a_call_past_its_deadline_raises_and_other_kinds_go_on() -> None:
    stuck, other = Pool("stuck", workers=2, deadline=0.5), Pool("other", workers=1, deadline=5)
    release = threading.Event()
    try:
        with pytest.raises(DeadlineExceeded, match=r"stuck: Event\.wait did not return within"):
            await asyncio.gather(stuck.run(release.wait), stuck.run(release.wait))
        # Both of stuck's threads are held; a third call of that kind waits its deadline only...
        with pytest.raises(DeadlineExceeded):
            await stuck.run(lambda: "queued behind them", deadline=0.2)
        # ... and another kind is not behind them at all.
        assert await other.run(lambda: "free") == "free"
    finally:
        release.set()
    assert await stuck.run(lambda: "after") == "after"  # released threads take work again


async def test_a_failing_call_raises_its_own_error_and_the_thread_lives_on() -> None:
    pool = Pool("files", workers=1, deadline=5)

    def broken() -> None:
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        await pool.run(broken)
    assert await pool.run(lambda: 42) == 42
    assert len(pool._threads) == 1  # bounded: the one thread was reused


def test_a_stuck_call_never_keeps_the_process_alive() -> None:
    """asyncio's own pool is joined at exit; a thread parked forever made SIGTERM deaf."""
    script = (
        "import asyncio, threading\n"
        "from orchestrator.blocking import Pool\n"
        "from orchestrator.errors import DeadlineExceeded\n"
        "async def main():\n"
        "    try:\n"
        "        await Pool('git', workers=1, deadline=0.2).run(threading.Event().wait)\n"
        "    except DeadlineExceeded:\n"
        "        print('gave up', flush=True)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,  # a hang is a failure, not a stuck suite
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gave up\n"


def _repo_with_a_hanging_merge_driver(tmp_path: Path) -> tuple[Git, Path]:
    """Two branches editing one file whose merge driver never returns (it writes its pid)."""
    repo = git_repo(write(tmp_path / "repo" / "status.txt", "a\n").parent)
    git(repo, "checkout", "-q", "-b", "theirs")
    write(repo / "status.txt", "b\n")
    git(repo, "commit", "-q", "-am", "theirs")
    git(repo, "checkout", "-q", "main")
    write(repo / "status.txt", "c\n")
    git(repo, "commit", "-q", "-am", "ours")
    pid_file = tmp_path / "driver.pid"
    attributes = write(tmp_path / "attributes", "status.txt merge=hang\n")
    driver = f"sh -c 'echo $$ > {pid_file}; trap \"\" TERM; exec sleep 1000' %O %A %B"
    config = [("core.attributesFile", str(attributes)), ("merge.hang.driver", driver)]
    return Git(repo, config=config, timeout=1.0), pid_file


def test_a_merge_driver_that_never_returns_is_killed_at_the_deadline(tmp_path: Path) -> None:
    repository, pid_file = _repo_with_a_hanging_merge_driver(tmp_path)
    with pytest.raises(GitError, match=r"git .*merge.* did not finish within 1 s; it was stopped"):
        repository.run("merge", "--no-edit", "theirs")
    assert gone(int(pid_file.read_text()))  # it ignored SIGTERM; SIGKILL followed
    assert not (repository.cwd / ".git" / "index.lock").exists()


async def test_stopping_running_git_frees_its_thread_and_leaves_no_lock(tmp_path: Path) -> None:
    repository, pid_file = _repo_with_a_hanging_merge_driver(tmp_path)
    repository.timeout = 3600.0
    pool = Pool("git", workers=1, deadline=3600)
    merging = asyncio.ensure_future(pool.run(repository.run, "merge", "--no-edit", "theirs"))
    deadline = asyncio.get_running_loop().time() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert asyncio.get_running_loop().time() < deadline, "the merge driver never started"
        await asyncio.sleep(0.05)
    assert stop_running() == 1
    with pytest.raises(GitError):
        await asyncio.wait_for(merging, 30)
    assert gone(int(pid_file.read_text()))
    assert not (repository.cwd / ".git" / "index.lock").exists()
