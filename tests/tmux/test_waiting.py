"""wait_for_output against real files, a real watcher and real tmux sessions."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.agents.profiles import make_profile
from orchestrator.filewatch import FileWatcher, shared_watcher
from orchestrator.tmux import TmuxAgentManager
from orchestrator.watch import filesystem_now, wait_for_output


def exists_with(path: Path, marker: str = ""):
    def check() -> str | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if marker in text else None

    return check


async def test_done_when_the_file_appears_in_folders_created_late(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "stories" / "1.1.story.md"
    waiter = asyncio.create_task(
        wait_for_output(exists_with(target), watch=[target.parent], timeout=20)
    )
    await asyncio.sleep(0)  # let the waiter subscribe before anything exists
    target.parent.mkdir(parents=True)
    target.write_text("## Status\nDraft\n")
    result = await waiter
    assert result.reason == "done"
    assert result.value == "## Status\nDraft\n"


async def test_a_file_written_before_the_wait_is_seen(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("ready")
    result = await wait_for_output(exists_with(target), watch=[tmp_path], timeout=5)
    assert result.done and result.value == "ready"


async def test_half_written_file_is_not_done_until_complete(tmp_path: Path) -> None:
    target = tmp_path / "gate.yml"
    seen: list[str] = []

    def check() -> str | None:
        text = target.read_text() if target.exists() else ""
        seen.append(text)
        return text if text.endswith("gate: PASS\n") else None

    waiter = asyncio.create_task(wait_for_output(check, watch=[tmp_path], timeout=20))
    await asyncio.sleep(0)
    with target.open("w") as handle:
        for piece in ("schema: 1\n", "story: '1.1'\n", "gate: PASS\n"):
            handle.write(piece)
            handle.flush()
            # Wait until the waiter has looked at this piece before writing the next.
            while not any(s.endswith(piece) for s in seen) and not waiter.done():
                await asyncio.sleep(0.005)
    result = await waiter
    assert result.done
    assert "schema: 1\n" in seen  # an incomplete version was evaluated and not accepted


async def test_timeout(tmp_path: Path) -> None:
    result = await wait_for_output(lambda: None, watch=[tmp_path], timeout=0.3)
    assert result.reason == "timeout"
    assert result.elapsed >= 0.3


async def test_cancel_event_ends_with_cancelled(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    waiter = asyncio.create_task(
        wait_for_output(lambda: None, watch=[tmp_path], timeout=30, cancel=cancel)
    )
    await asyncio.sleep(0)
    cancel.set()
    result = await waiter
    assert result.reason == "cancelled"


async def test_task_cancellation_leaves_nothing_running(tmp_path: Path) -> None:
    watcher = FileWatcher(idle_stop=0.0)
    waiter = asyncio.create_task(
        wait_for_output(lambda: None, watch=[tmp_path], timeout=30, watcher=watcher)
    )
    while not watcher._subs:
        await asyncio.sleep(0.001)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert watcher._subs == set()
    assert watcher._task is not None
    await asyncio.wait_for(watcher._task, timeout=10)  # it stops by itself once idle


async def test_the_next_waiter_reuses_the_registered_watch(tmp_path: Path) -> None:
    watcher = FileWatcher()
    first, second = tmp_path / "a" / "out.md", tmp_path / "b" / "out.md"
    for target in (first, second):
        target.parent.mkdir()
        target.write_text("done")
    for target in (first, second, first):
        result = await wait_for_output(
            exists_with(target), watch=[tmp_path / "a", tmp_path / "b"], timeout=30, watcher=watcher
        )
        assert result.reason == "done"
    assert watcher.registrations == 1
    assert watcher._task is not None and not watcher._task.done()
    watcher._task.cancel()


@dataclass(frozen=True)
class _Output:
    written_ns: int


class _QuietProbe:
    """A probe of an agent that neither exits nor vanishes."""

    def __init__(self, folder: Path) -> None:
        self.watched = [folder]
        self.activity: list[Path] = []

    def exited(self) -> int | None:
        return None

    async def vanished(self) -> bool:
        return False

    async def screen(self) -> list[str]:
        return []


async def test_output_landing_between_check_and_turn_end_is_not_nudged(tmp_path: Path) -> None:
    turn_end = tmp_path / "turn-end.json"
    out = tmp_path / "out.md"
    looks = 0

    def check() -> _Output | None:
        nonlocal looks
        looks += 1
        if looks == 1:  # the agent writes its output, then its turn-end, right after this look
            out.write_text("done")
            turn_end.write_text("{}")
            return None
        return _Output(out.stat().st_mtime_ns) if out.exists() else None

    nudges: list[str] = []

    async def nudge(reason: str) -> bool:
        nudges.append(reason)
        return True

    result = await wait_for_output(
        check,
        watch=[tmp_path],
        probe=_QuietProbe(tmp_path),
        turn_end_file=turn_end,
        signals_since_ns=filesystem_now(tmp_path / "marks"),
        settle=30,
        timeout=30,
        nudge=nudge,
    )
    assert (result.reason, result.turn) == ("done", "signal")
    assert nudges == []


async def test_agent_exit_without_output_ends_the_wait_at_once(
    manager: TmuxAgentManager, project: Path
) -> None:
    session = await manager.spawn(
        "dev", "1.1", profile=make_profile("generic", ["sh", "-c", "echo crashed; exit 4"])
    )
    result = await wait_for_output(
        lambda: None, watch=[project], probe=manager.probe(session), timeout=60
    )
    assert result.reason == "agent_gone"
    assert result.exit_status == 4
    assert result.elapsed < 30  # not the timeout
    assert "crashed" in result.last_screen


async def test_output_written_just_before_exit_still_counts(
    manager: TmuxAgentManager, project: Path
) -> None:
    out = project / "result.txt"
    session = await manager.spawn(
        "qa", "1.1", profile=make_profile("generic", ["sh", "-c", f"echo ok > {out}; exit 0"])
    )
    result = await wait_for_output(
        exists_with(out), watch=[project], probe=manager.probe(session), timeout=30
    )
    assert result.reason == "done"


async def test_a_vanished_session_ends_the_wait(manager: TmuxAgentManager, project: Path) -> None:
    session = await manager.spawn("sm", "1.1", profile=make_profile("generic", ["sleep", "60"]))
    waiter = asyncio.create_task(
        wait_for_output(lambda: None, watch=[project], probe=manager.probe(session), timeout=60)
    )
    await asyncio.sleep(0)
    manager.server.libtmux.cmd("kill-session", "-t", f"={session.name}")  # someone else killed it
    result = await waiter
    assert result.reason == "agent_gone"
    assert "vanished" in result.detail


async def test_stalled_when_nothing_moves(manager: TmuxAgentManager, project: Path) -> None:
    session = await manager.spawn("dev", "1.1", profile=make_profile("generic", ["sleep", "60"]))
    result = await wait_for_output(
        lambda: None,
        watch=[project],
        probe=manager.probe(session),
        timeout=30,
        stall_timeout=0.6,
    )
    assert result.reason == "stalled"


async def test_agent_output_counts_as_activity(manager: TmuxAgentManager, project: Path) -> None:
    busy = "while true; do echo working; sleep 0.1; done"
    session = await manager.spawn("dev", "1.1", profile=make_profile("generic", ["sh", "-c", busy]))
    result = await wait_for_output(
        lambda: None,
        watch=[project],
        probe=manager.probe(session),
        timeout=2.0,
        stall_timeout=0.8,
    )
    assert result.reason == "timeout"  # busy output kept it from being called stalled


async def test_fifty_concurrent_waits_share_one_watcher(tmp_path: Path) -> None:
    watcher = shared_watcher()
    targets = [tmp_path / f"story-{i}" / "out.md" for i in range(50)]
    threads_before = threading.active_count()
    waiters = [
        asyncio.create_task(wait_for_output(exists_with(t), watch=[t.parent], timeout=30))
        for t in targets
    ]
    while len(watcher._subs) < 50:
        await asyncio.sleep(0.001)
    for target in targets:
        target.parent.mkdir()
        target.write_text("done")
    results = await asyncio.gather(*waiters)
    assert [r.reason for r in results] == ["done"] * 50
    # One watcher thread (plus a few to_thread workers for the checks), not 50.
    assert threading.active_count() - threads_before < 12
    assert watcher.registrations <= 3  # not one per waiter or per new folder


def test_filesystem_now_orders_with_later_writes(tmp_path: Path) -> None:
    mark = filesystem_now(tmp_path / "state")
    out = tmp_path / "later.txt"
    out.write_text("x")
    assert out.stat().st_mtime_ns >= mark


# --- with the BMad stage conventions and the simulated agent --------------------------------


async def _sm_wait(manager: TmuxAgentManager, project: Path, *sim: str, stall: float | None = None):
    from orchestrator.methods import StageRequest
    from orchestrator.methods.bmad_v4 import BmadPaths, check_stage_output, watch_dirs
    from tests.helpers import simulated_argv

    paths = BmadPaths.load(project)
    request = StageRequest("sm", "1.1")
    since = filesystem_now(manager.state_dir / "run")
    session = await manager.spawn(
        "sm", "1.1", profile=make_profile("simulated", simulated_argv(*sim)), prompt="draft 1.1"
    )
    return await wait_for_output(
        lambda: check_stage_output(request, paths, since_ns=since),
        watch=watch_dirs(request, paths),
        probe=manager.probe(session),
        timeout=30,
        stall_timeout=stall,
    )


async def test_a_leftover_story_does_not_complete_the_stage_but_a_fresh_one_does(
    manager: TmuxAgentManager, project: Path
) -> None:
    import os

    stories = project / "docs" / "stories"
    stories.mkdir(parents=True)
    leftover = stories / "1.1.story.md"
    leftover.write_text("# Story 1.1: old\n\n## Status\n\nDraft\n")
    os.utime(leftover, (1_000_000_000, 1_000_000_000))  # an earlier run's file
    result = await _sm_wait(manager, project, "--work-seconds", "1")
    assert result.reason == "done"
    assert result.value is not None and result.value.outcome == "drafted"
    assert "Acceptance Criteria" in leftover.read_text()  # the agent's own draft, not the old one


async def test_a_story_written_in_pieces_is_done_only_when_complete(
    manager: TmuxAgentManager, project: Path
) -> None:
    result = await _sm_wait(manager, project, "--misbehave", "pieces")
    assert result.reason == "done"
    text = (project / "docs" / "stories" / "1.1.story.md").read_text()
    assert "## Status" in text and "## QA Results" in text


async def test_simulated_crash_mid_stage_is_agent_gone_with_its_status(
    manager: TmuxAgentManager, project: Path
) -> None:
    result = await _sm_wait(manager, project, "--misbehave", "exit-mid-stage")
    assert result.reason == "agent_gone"
    assert result.exit_status == 4
    assert any("crash mid-stage" in line for line in result.last_screen)


async def test_a_hanging_simulated_agent_stalls(manager: TmuxAgentManager, project: Path) -> None:
    result = await _sm_wait(manager, project, "--misbehave", "hang", stall=0.8)
    assert result.reason == "stalled"


async def test_another_sessions_output_does_not_rerun_our_check(
    manager: TmuxAgentManager, project: Path
) -> None:
    busy = "while true; do echo chatter; sleep 0.02; done"
    await manager.spawn("dev", "7.1", profile=make_profile("generic", ["sh", "-c", busy]))
    quiet = await manager.spawn("qa", "7.2", profile=make_profile("generic", ["sleep", "60"]))
    checks = 0

    def count() -> None:
        nonlocal checks
        checks += 1

    result = await wait_for_output(
        count, watch=[project / "out"], probe=manager.probe(quiet), timeout=2.0
    )
    assert result.reason == "timeout"
    # The first look plus one per 500 ms tick, not one per line the other session printed.
    assert checks <= 8, checks
