"""Parallel stories in worktrees of their own: the CLI, real git, real tmux, the simulated agent."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

from orchestrator.tmux import TmuxAgentManager
from tests.helpers import (
    cli,
    git,
    git_repo,
    recorded_prompts,
    report,
    runs,
    sessions_left,
    start_cli,
    stories,
    tree_snapshot,
    wait_for_run,
    write,
    write_epic,
)

TEN_LINES = "".join(f"line {n}\n" for n in range(1, 11))


def committed_demo(demo: Path, socket: str, *flags: str, **overrides: Any) -> Path:
    """The demo epic in a git repository of its own, its BMad install ignored as a real
    install's .gitignore has it; `flags` go to the simulated agent, which records its prompts
    beside the project (`recorded_prompts(demo.parent)`), not in it."""
    overrides.setdefault("stories", ["1.1", "1.3"])
    agent = {
        "profile": "simulated",
        "flags": ["--record", str(demo.parent / "prompts.jsonl"), *flags],
    }
    epic = write_epic(demo, socket, agent=agent, **overrides)
    (demo / ".gitignore").write_text(".bmad-orchestrator/\n# BMAD (local only)\n.bmad-core/\n")
    write(demo / "src" / "shared.txt", TEN_LINES)
    git_repo(demo)
    return epic


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "bmad/*", "--format=%(refname:short)").split()


def results(data: dict[str, Any]) -> dict[str, str]:
    return {story: row["result"] for story, row in stories(data).items()}


async def test_parallel_stories_on_different_files_both_merge_and_the_users_tree_is_untouched(
    demo: Path, socket: str, tmp_path: Path
) -> None:
    marks = tmp_path / "setup-ran"
    marks.mkdir()
    mark = "import os, sys; open(sys.argv[1] + '/' + os.path.basename(os.getcwd()), 'w')"
    setup = [sys.executable, "-c", mark, str(marks)]
    epic = committed_demo(
        demo,
        socket,
        "--dev-edit", "1.1=src/one.txt", "--dev-edit", "1.3=src/three.txt",
        git={"setup": setup},
    )  # fmt: skip
    git(demo, "switch", "-q", "-c", "feature")
    write(demo / "scratch.txt", "the user's own untracked file\n")
    before = (tree_snapshot(demo), git(demo, "rev-parse", "HEAD"), git(demo, "status", "-s"))

    result = cli(epic)

    assert result.returncode == 0, result.stdout + result.stderr
    data = report(demo)
    assert data["isolation"] == "worktree" and data["branch"] == "bmad/epic"
    assert results(data) == {"1.1": "done", "1.3": "done"}
    for story, row in stories(data).items():
        assert row["branch"] == f"bmad/epic--{story}" and row["merge_commit"]
        subjects = [line.split(" ", 1)[1] for line in row["commits"]]
        assert subjects == [
            f"bmad({story}): sm drafted",
            f"bmad({story}): po approved",
            f"bmad({story}): dev implemented",
            f"bmad({story}): qa PASS",
            f"bmad({story}): done",
        ]
    assert git(demo, "show", "bmad/epic:src/one.txt") == "story 1.1 was here\n"
    assert git(demo, "show", "bmad/epic:src/three.txt") == "story 1.3 was here\n"
    assert "## Status\n\nDone\n" in git(demo, "show", "bmad/epic:docs/stories/1.1.story.md")
    merges = git(demo, "log", "--merges", "--format=%s", "bmad/epic").splitlines()
    assert sorted(merges) == [
        "bmad: merge story 1.1 (bmad/epic--1.1)",
        "bmad: merge story 1.3 (bmad/epic--1.3)",
    ]
    tracked = git(demo, "ls-tree", "-r", "--name-only", "bmad/epic").split()
    assert not [name for name in tracked if name.startswith(".bmad-core")]
    assert branches(demo) == ["bmad/epic"]  # merged story branches are deleted
    assert sorted(p.name for p in (demo / ".bmad-orchestrator" / "worktrees").iterdir()) == [
        "_integration"
    ]
    assert sorted(p.name for p in marks.iterdir()) == ["1.1", "1.3"]
    after = (tree_snapshot(demo), git(demo, "rev-parse", "HEAD"), git(demo, "status", "-s"))
    assert after == before
    assert git(demo, "branch", "--show-current").strip() == "feature"
    assert f"bring the work home with: git -C {demo} merge bmad/epic" in result.stdout
    assert "(2 stories merged by this run)" in result.stdout
    assert "1 untracked file(s) in the project are not in the stories' worktrees" in result.stderr
    assert "last commit: scratch.txt. Commit them" in result.stderr
    again = cli(epic, "--plain")  # both already done: the hint still counts what is waiting
    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        "(0 stories merged by this run)" in again.stdout and "commits your checkout" in again.stdout
    )


async def test_the_same_file_in_different_places_merges_and_merge_into_brings_it_home(
    demo: Path, socket: str
) -> None:
    epic = committed_demo(
        demo,
        socket,
        "--dev-edit", "1.1=src/shared.txt:2", "--dev-edit", "1.3=src/shared.txt:9",
        git={"merge_into": "main"},
    )  # fmt: skip

    result = cli(epic)

    assert result.returncode == 0, result.stdout + result.stderr
    assert results(report(demo)) == {"1.1": "done", "1.3": "done"}
    lines = (demo / "src" / "shared.txt").read_text().splitlines()
    assert lines[1] == "story 1.1 was here" and lines[8] == "story 1.3 was here"
    assert lines[0] == "line 1" and lines[9] == "line 10"
    assert "merged bmad/epic into main" in result.stdout
    assert "untracked" not in result.stderr  # the ignored install is not "untracked work"
    assert git(demo, "status", "--porcelain", "--untracked-files=no") == ""


async def test_conflicting_stories_get_one_resolve_round_and_both_end_done(
    demo: Path, socket: str
) -> None:
    epic = committed_demo(
        demo, socket, "--dev-edit", "1.1=src/shared.txt", "--dev-edit", "1.3=src/shared.txt"
    )

    result = cli(epic)

    assert result.returncode == 0, result.stdout + result.stderr
    rows = stories(report(demo))
    assert results(report(demo)) == {"1.1": "done", "1.3": "done"}
    assert sorted(row["merge_rounds"] for row in rows.values()) == [0, 1]
    (resolved,) = [story for story, row in rows.items() if row["merge_rounds"] == 1]
    row = rows[resolved]
    assert row["merge_conflicts"] == ["src/shared.txt"]
    assert [r["stage"] for r in row["runs"]] == ["sm", "po", "dev", "qa", "dev", "qa"]
    assert row["outcomes"]["integrate"] == "merged"
    assert runs(demo)[resolved] == {"sm": 1, "po": 1, "dev": 2, "qa": 2}
    (prompt,) = recorded_prompts(demo.parent, "git reports conflicts in: src/shared.txt")
    assert "bmad/epic" in prompt and "do not commit" in prompt
    final = git(demo, "show", "bmad/epic:src/shared.txt")
    assert final.startswith(TEN_LINES) and "<<<<<<<" not in final
    assert sorted(final.splitlines()[10:]) == ["story 1.1 was here", "story 1.3 was here"]
    subjects = [line.split(" ", 1)[1] for line in row["commits"]]
    assert f"bmad({resolved}): dev implemented" in subjects[4:]  # the merge, concluded


async def test_past_max_merge_rounds_a_story_fails_with_its_branch_intact_and_cleanup_keeps_it(
    demo: Path, socket: str
) -> None:
    epic = committed_demo(
        demo,
        socket,
        "--dev-edit", "1.1=src/shared.txt", "--dev-edit", "1.3=src/shared.txt",
        max_merge_rounds=0,
    )  # fmt: skip

    result = cli(epic)

    assert result.returncode == 1, result.stdout + result.stderr
    rows = stories(report(demo))
    assert sorted(results(report(demo)).values()) == ["done", "merge_conflict"]
    (failed,) = [story for story, row in rows.items() if row["result"] == "merge_conflict"]
    row = rows[failed]
    assert "src/shared.txt" in row["reason"] and "max_merge_rounds is 0" in row["reason"]
    branch = f"bmad/epic--{failed}"
    worktree = demo / ".bmad-orchestrator" / "worktrees" / failed
    assert f"git -C {worktree} merge bmad/epic" in row["reason"]
    assert git(demo, "show", f"{branch}:src/shared.txt").endswith(f"story {failed} was here\n")
    worktree = demo / ".bmad-orchestrator" / "worktrees" / failed
    assert worktree.is_dir() and f"branch {branch} kept" in result.stdout

    status = json.loads(cli("status", epic, "--json").stdout)
    (standing,) = [row for row in status if row["story"] == failed]
    assert standing["status_raw"] == "Done" and standing["start"] is None
    assert f"Done on branch {branch} but not merged" in standing["reason"]

    cleaned = cli("cleanup", epic, "--socket", socket)

    assert cleaned.returncode == 0, cleaned.stderr
    assert f"and branch {branch}: it is not merged" in cleaned.stdout
    assert branches(demo) == ["bmad/epic", branch]
    assert worktree.is_dir()  # where the reason says to finish the merge
    assert not (demo / ".bmad-orchestrator" / "worktrees" / "_integration").exists()
    assert git(demo, "show", f"{branch}:src/shared.txt").endswith(f"story {failed} was here\n")


async def test_a_dependant_starts_from_its_dependencys_merged_work(demo: Path, socket: str) -> None:
    dependant = {"id": "1.2", "depends_on": ["1.1"]}
    epic = committed_demo(demo, socket, "--dev-edit", "1.1=src/one.txt", stories=["1.1", dependant])

    result = cli(epic)

    assert result.returncode == 0, result.stdout + result.stderr
    rows = stories(report(demo))
    first_of_dependant = rows["1.2"]["commits"][0].split()[0]
    assert git(demo, "show", f"{first_of_dependant}:src/one.txt") == "story 1.1 was here\n"
    git(demo, "merge-base", "--is-ancestor", rows["1.1"]["merge_commit"], first_of_dependant)


async def test_a_dirty_tree_or_a_project_outside_git_is_refused_before_anything_starts(
    demo: Path, socket: str, tmp_path: Path
) -> None:
    epic = committed_demo(demo, socket)
    write(demo / "src" / "shared.txt", "an edit the user has not committed\n")
    dirty = cli(epic)
    assert dirty.returncode == 2
    assert "uncommitted changes to tracked files (src/shared.txt)" in dirty.stderr
    assert "git stash" in dirty.stderr and "Traceback" not in dirty.stderr
    assert branches(demo) == [] and await sessions_left(demo, socket) == []

    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("docs", ".bmad-core"):
        (demo / name).rename(plain / name)
    outside = write_epic(plain, socket, isolation="worktree")
    refused = cli(outside)
    assert refused.returncode == 2
    assert "isolation: worktree needs a git repository" in refused.stderr
    assert "isolation: shared" in refused.stderr
    assert await sessions_left(plain, socket) == []


async def killed_mid_dev(demo: Path, socket: str) -> Path:
    """Story 1.1 in a worktree, its orchestrator SIGKILLed while Dev hangs (the agent lives on)."""
    epic = committed_demo(
        demo,
        socket,
        "--dev-edit", "1.1=src/one.txt",
        "--misbehave", "hang", "--misbehave-stage", "dev", "--misbehave-times", "1",
        stories=["1.1"],
        isolation="worktree",
    )  # fmt: skip
    first = start_cli(epic, "--plain")
    try:
        await wait_for_run(demo, "1.1", "dev")
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    return epic


async def test_resume_after_a_hard_kill_mid_dev_reuses_the_stories_worktree(
    demo: Path, socket: str
) -> None:
    epic = await killed_mid_dev(demo, socket)
    worktree = demo / ".bmad-orchestrator" / "worktrees" / "1.1"
    before = git(worktree, "log", "--format=%H %s", "bmad/epic--1.1").splitlines()
    assert [line.split(" ", 1)[1] for line in before[:2]] == [
        "bmad(1.1): po approved",
        "bmad(1.1): sm drafted",
    ]
    write(worktree / "left-by-the-killed-run.txt", "only this worktree has me\n")
    await TmuxAgentManager(demo, socket=socket).kill_all()  # the hung agent dies with it

    resumed = cli(epic, "--resume")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    row = stories(report(demo))["1.1"]
    assert row["result"] == "done"
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 2, "qa": 1}
    history = git(demo, "log", "--format=%H", row["merge_commit"] + "^2").split()
    assert {line.split()[0] for line in before} <= set(history)
    assert git(demo, "show", "bmad/epic:left-by-the-killed-run.txt")
    assert await sessions_left(demo, socket) == []


async def test_resume_after_a_kill_mid_merge_clears_the_locks_and_the_half_merge(
    demo: Path, socket: str
) -> None:
    """What `kill -9` during a merge leaves (index.lock, MERGE_HEAD, half-written files) once
    stopped `--resume` at `git merge --abort` and lost the run; now it is cleared and goes on."""
    epic = await killed_mid_dev(demo, socket)
    await TmuxAgentManager(demo, socket=socket).kill_all()
    worktrees = demo / ".bmad-orchestrator" / "worktrees"
    integration, story = worktrees / "_integration", worktrees / "1.1"
    side = demo.parent / "side"
    git(demo, "worktree", "add", "-q", "-b", "side", str(side), "bmad/epic")
    write(side / "src" / "side.txt", "from a merge that was killed\n")
    git(side, "add", "-A")
    git(side, "commit", "-q", "-m", "side")
    git(demo, "worktree", "remove", str(side))
    git(integration, "merge", "-q", "--no-commit", "--no-ff", "side")
    write(integration / "src" / "shared.txt", "half written\n")
    locks = [
        Path(checkout, git(checkout, "rev-parse", "--git-path", "index.lock").strip())
        for checkout in (integration, story)
    ]
    for lock in locks:
        lock.write_text("")

    resumed = cli(epic, "--resume")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "recovered: removed a stale" in resumed.stdout
    assert "recovered: aborted a merge" in resumed.stdout
    assert stories(report(demo))["1.1"]["result"] == "done"
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 2, "qa": 1}  # nothing ran twice
    assert not any(lock.exists() for lock in locks)
    assert "side.txt" not in git(demo, "ls-tree", "-r", "--name-only", "bmad/epic")
    assert git(demo, "show", "bmad/epic:src/shared.txt") == TEN_LINES
    assert git(demo, "show", "bmad/epic:src/one.txt")
    cleaned = cli("cleanup", epic)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert not integration.exists() and not story.exists()


async def test_cleanup_undoes_a_half_merge_in_the_integration_checkout(
    demo: Path, socket: str
) -> None:
    epic = committed_demo(demo, socket, stories=["1.1"], isolation="worktree")
    done = cli(epic)
    assert done.returncode == 0, done.stdout + done.stderr
    integration = demo / ".bmad-orchestrator" / "worktrees" / "_integration"
    assert integration.is_dir()
    git(integration, "merge", "-q", "--no-commit", "--no-ff", "main")  # nothing new: no MERGE_HEAD
    write(integration / "src" / "shared.txt", "half written\n")
    lock = Path(integration, git(integration, "rev-parse", "--git-path", "index.lock").strip())
    lock.write_text("")

    cleaned = cli("cleanup", epic)

    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "removed a stale" in cleaned.stdout and "restored" in cleaned.stdout
    assert not integration.exists() and not lock.exists()
    assert git(demo, "show", "bmad/epic:src/shared.txt") == TEN_LINES
