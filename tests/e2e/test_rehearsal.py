"""`--simulate` rehearses on a scratch copy: the project, its branches and its state dir stay
byte-identical, whatever the rehearsal does (worktrees, merges, Done stories, an interrupt)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from orchestrator.app.config import load_epic
from orchestrator.app.rehearsal import scratch_folder
from tests.helpers import (
    cli,
    git,
    git_repo,
    rehearsed,
    report,
    start_cli,
    tree_snapshot,
    wait_for_run,
    write_epic,
)


def committed_project(demo: Path, socket: str, **overrides: object) -> Path:
    """The demo as a repository of its own, two stories at once in worktrees."""
    settings: dict[str, object] = {"stories": ["1.1", "1.3"], "parallel": 2}
    settings.update(overrides)
    epic = write_epic(demo, socket, **settings)
    (demo / ".gitignore").write_text(".bmad-orchestrator/\n")
    git_repo(demo)
    return epic


def everything(project: Path) -> tuple[dict[str, bytes], str, str, str]:
    """What must not change: every file (the state dir and .git included), refs, worktrees."""
    files = tree_snapshot(project, skip="")
    files |= {f".git/{k}": v for k, v in tree_snapshot(project / ".git", skip="").items()}
    refs = git(project, "for-each-ref", "--format=%(refname) %(objectname)")
    return (
        files,
        refs,
        git(project, "worktree", "list"),
        git(project, "--no-optional-locks", "status", "--porcelain"),
    )


def test_a_rehearsal_leaves_the_project_byte_identical(demo: Path, socket: str) -> None:
    epic = committed_project(demo, socket)
    before = everything(demo)

    done = cli(epic, "--simulate", "--plain", timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    copy = rehearsed(done.stdout)
    assert demo not in copy.parents and copy != demo
    assert "1.1: done" in done.stdout and "1.3: done" in done.stdout
    assert "rehearsal: the copy is removed" in done.stdout
    assert not copy.exists()
    assert everything(demo) == before
    assert not (demo / ".bmad-orchestrator").exists()
    real = json.loads(cli("status", epic, "--json").stdout)
    assert [row["start"] for row in real] == ["sm", "sm"]  # the real stories are untouched


def test_keep_keeps_the_copy_with_its_worktree_run(demo: Path, socket: str) -> None:
    epic = committed_project(demo, socket)
    before = everything(demo)

    done = cli(epic, "--simulate", "--keep", "--plain", timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    copy = rehearsed(done.stdout)
    assert {s["result"] for s in report(copy)["stories"]} == {"done"}
    assert git(copy, "log", "--format=%s", "bmad/epic")  # merges rehearsed in the copy's git
    assert everything(demo) == before


async def test_an_interrupted_rehearsal_goes_on_from_the_hint_it_prints(
    demo: Path, socket: str
) -> None:
    flags = ["--misbehave", "hang", "--misbehave-stage", "dev", "--misbehave-times", "1"]
    epic = committed_project(
        demo, socket, stories=["1.1"], parallel=1, agent={"profile": "simulated", "flags": flags}
    )
    before = everything(demo)
    copy = scratch_folder(load_epic(epic)) / demo.name
    first = start_cli(epic, "--simulate", "--plain")
    try:
        await wait_for_run(copy, "1.1", "dev")
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert "resume with --simulate --resume" in out
    assert "go on with: bmad-orchestrator" in out and "--simulate --resume" in out

    resumed = cli(epic, "--simulate", "--resume", "--plain", timeout=300)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming run" in resumed.stdout
    assert everything(demo) == before
    assert not copy.exists()  # finished: removed


def test_nothing_to_resume_without_a_rehearsal(demo: Path, socket: str) -> None:
    epic = committed_project(demo, socket)
    refused = cli(epic, "--simulate", "--resume")
    assert refused.returncode == 2
    assert "no rehearsal of this epic to resume" in refused.stderr


def test_a_rehearsals_gate_is_answered_with_simulate_and_goes_on_in_the_copy(
    demo: Path, socket: str
) -> None:
    epic = committed_project(demo, socket, stories=["1.1"], parallel=1, gates=["after_po"])
    before = everything(demo)
    waiting = cli(epic, "--simulate", "--plain", timeout=300)
    assert waiting.returncode == 3, waiting.stdout + waiting.stderr
    assert f"approve {epic} 1.1 --simulate" in waiting.stdout
    assert cli("approve", epic, "1.1").returncode == 2  # the real project has no question

    approved = cli("approve", epic, "1.1", "--simulate", timeout=300)

    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "1.1: done" in approved.stdout and "the copy is removed" in approved.stdout
    assert everything(demo) == before
