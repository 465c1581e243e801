"""The real CLI in a subprocess: real tmux on a private socket, the simulated agent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.app.runs import load_records
from orchestrator.tmux import TmuxAgentManager, TmuxServer
from tests.helpers import (
    REPO,
    cli,
    events,
    report,
    runs,
    sessions_left,
    simulated_argv,
    spawn_orphan,
    start_cli,
    stories,
    wait_for_run,
    write_epic,
)


async def test_the_demo_epic_runs_to_done(demo: Path, socket: str) -> None:
    result = cli(write_epic(demo, socket))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "each sees the others' changes" in result.stdout  # parallel, not in git: shared
    data = report(demo)
    assert data["exit_code"] == 0 and not data["interrupted"]
    by_id = stories(data)
    assert {k: v["result"] for k, v in by_id.items()} == {
        "1.1": "done",
        "1.2": "done",
        "1.3": "done",
    }
    assert by_id["1.2"]["qa_fix_rounds"] == 1
    assert [r["outcome"] for r in by_id["1.2"]["runs"] if r["stage"] == "qa"] == ["FAIL", "PASS"]
    for story in by_id.values():
        assert set(story["outcomes"]) == {"sm", "po", "dev", "qa", "integrate"}
        assert set(story["seconds"]) == {"sm", "po", "dev", "qa", "integrate"}
        assert all(Path(r["log_path"]).exists() for r in story["runs"])
        assert "Status\n\nDone" in Path(story["story_file"]).read_text()
    # 1.2 depends on 1.1: its SM started only after 1.1 was Done.
    first_12 = min(r["started_at"] for r in by_id["1.2"]["runs"])
    last_11 = max(r["started_at"] for r in by_id["1.1"]["runs"])
    assert first_12 > last_11
    assert await sessions_left(demo, socket) == []
    mode = (demo / ".bmad-orchestrator" / "checkpoints.sqlite").stat().st_mode & 0o777
    assert mode == 0o600


async def test_a_failing_story_exits_1_and_its_dependant_is_skipped(
    demo: Path, socket: str
) -> None:
    epic = write_epic(
        demo, socket, agent={"profile": "simulated", "flags": ["--dev-blocked", "1.1"]}
    )
    result = cli(epic)
    assert result.returncode == 1, result.stdout + result.stderr
    by_id = stories(report(demo))
    assert by_id["1.1"]["result"] == "failed"
    assert by_id["1.1"]["reason"] == "Dev reported the story Blocked"
    assert by_id["1.2"]["result"] == "skipped"
    assert by_id["1.2"]["reason"] == "depends on 1.1, which failed"
    assert by_id["1.3"]["result"] == "done"
    assert "1.2" not in runs(demo)
    assert await sessions_left(demo, socket) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"parallel": "two"}, "parallel: Input should be a valid integer"),
        ({"paralel": 2}, "unknown key 'paralel'"),
        (
            {
                "stories": [
                    {"id": "1.1", "depends_on": ["1.2"]},
                    {"id": "1.2", "depends_on": ["1.1"]},
                ]
            },
            "dependency cycle 1.1 -> 1.2 -> 1.1",
        ),
        ({"stories": [{"id": "1.1", "depends_on": ["9.9"]}]}, "unknown story '9.9'"),
        ({"project": "no-such-folder"}, "project: folder"),
        ({"stories": [1.10]}, "must be quoted"),
        ({"stages": {"dev": {"timeout": "soon"}}}, "stages.dev.timeout"),
        ({"stages": {"qa": {"prompt": "review {story}"}}}, "unknown placeholder {story}"),
    ],
)
def test_bad_configs_exit_2_naming_the_problem(
    demo: Path, socket: str, change: dict[str, Any], expected: str
) -> None:
    epic = write_epic(demo, socket, **change)
    result = cli(epic)
    assert result.returncode == 2
    assert expected in result.stderr
    validated = cli("validate", epic)
    assert validated.returncode == 2 and expected in validated.stderr
    assert not TmuxServer(socket).alive()


def test_a_missing_agent_binary_is_reported_before_anything_starts(demo: Path, socket: str) -> None:
    epic = write_epic(demo, socket, agent={"profile": "generic", "command": "no-such-agent-cli"})
    result = cli(epic)
    assert result.returncode == 2
    assert "'no-such-agent-cli'" in result.stderr and "not on PATH" in result.stderr
    assert not TmuxServer(socket).alive()
    # --simulate replaces the agent, so the same epic rehearses fine.
    assert cli(epic, "--simulate", "--only", "1.3").returncode == 0


def test_dry_run_prints_the_plan_and_starts_nothing(demo: Path, socket: str) -> None:
    result = cli(write_epic(demo, socket), "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "story 1.2 after 1.1: starts at sm" in out
    assert "session bmad-dev-1-2" in out
    assert "/BMad:agents:po *validate-story-draft docs/stories/1.1.story.md" in out
    assert "isolation: shared (every story works in the project folder)" in out
    assert "note: 2 stories at once share" in out  # the demo copy here is not in git
    assert not TmuxServer(socket).alive()
    assert not (demo / ".bmad-orchestrator" / "runs").exists()


def test_only_runs_the_chosen_stories_and_files_further_along_start_later(
    demo: Path, socket: str
) -> None:
    stories_dir = demo / "docs" / "stories"
    stories_dir.mkdir(parents=True)
    (stories_dir / "1.1.story.md").write_text("# Story 1.1: Done already\n\n## Status\n\nDone\n")
    (stories_dir / "1.3.story.md").write_text(
        "# Story 1.3: Approved by hand\n\n## Status\n\nApproved\n\n## Tasks / Subtasks\n\n"
        "- [ ] Task 1\n\n## Dev Agent Record\n\n### Completion Notes List\n\n## QA Results\n"
    )
    result = cli(write_epic(demo, socket), "--only", "1.1", "1.3")
    assert result.returncode == 0, result.stdout + result.stderr
    by_id = stories(report(demo))
    assert set(by_id) == {"1.1", "1.3"}
    assert by_id["1.1"]["result"] == "already done"
    assert by_id["1.3"]["result"] == "done"
    assert runs(demo) == {"1.3": {"dev": 1, "qa": 1}}


async def test_ctrl_c_leaves_no_session_and_resume_finishes_without_rerunning(
    demo: Path, socket: str
) -> None:
    hang = ["--misbehave", "hang", "--misbehave-stage", "dev", "--misbehave-story", "1.1"]
    hang += ["--misbehave-times", "1"]
    epic = write_epic(
        demo,
        socket,
        parallel=1,
        stories=["1.1", "1.3"],
        agent={"profile": "simulated", "flags": hang},
    )
    process = start_cli(epic)
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "--resume" in out
    assert await sessions_left(demo, socket) == []
    (record,) = load_records(demo / ".bmad-orchestrator")
    assert record.interrupted and not record.finished
    interrupted = stories(report(demo))["1.1"]  # the stages it finished are in its account
    assert interrupted["result"] == "interrupted"
    assert interrupted["attempts"] == {"sm": 1, "po": 1}, interrupted

    again = cli(epic)  # without --resume: a new run, with a hint about the old one
    assert "did not finish" in again.stdout and "--resume" in again.stdout
    assert again.returncode == 0
    # Start over to test --resume itself on a fresh interrupted run.
    shutil.rmtree(demo / ".bmad-orchestrator")
    shutil.rmtree(demo / "docs" / "stories")
    process = start_cli(epic)
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130

    resumed = cli(epic, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming run" in resumed.stdout
    assert runs(demo) == {
        "1.1": {"sm": 1, "po": 1, "dev": 2, "qa": 1},  # only the interrupted stage ran again
        "1.3": {"sm": 1, "po": 1, "dev": 1, "qa": 1},
    }
    assert await sessions_left(demo, socket) == []
    assert cli(epic, "--resume").returncode == 2  # nothing left to resume


async def test_resume_after_a_hard_kill_adopts_the_live_dev_session(
    demo: Path, socket: str
) -> None:
    epic = write_epic(
        demo,
        socket,
        parallel=1,
        stories=["1.1"],
        agent={"profile": "simulated"},
        stages={"dev": {"agent": {"profile": "simulated", "flags": ["--work-seconds", "3"]}}},
    )
    process = start_cli(epic)
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert "bmad-dev-1-1" in await sessions_left(demo, socket)  # tmux outlived the orchestrator

    resumed = cli(epic, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}  # Dev was not restarted
    (story,) = report(demo)["stories"]
    dev_runs = [r for r in story["runs"] if r["stage"] == "dev"]
    assert [r["adopted"] for r in dev_runs] == [True]
    assert story["result"] == "done"
    assert await sessions_left(demo, socket) == []


async def test_sessions_attach_and_cleanup_subcommands(project: Path, socket: str) -> None:
    orphan = spawn_orphan(str(project), socket, "bmad", "dev", "4.2")
    foreign = spawn_orphan(str(project), socket, "other", "dev", "4.2")
    mine = TmuxAgentManager(project, socket=socket, prefix="bmad")
    other = TmuxAgentManager(project, socket=socket, prefix="other")
    try:
        listed = cli("sessions", "--socket", socket)
        assert listed.returncode == 0
        assert "bmad-dev-4-2  story 4.2  stage dev" in listed.stdout
        assert f"tmux -L {socket} attach -r -t =bmad-dev-4-2" in listed.stdout
        assert "other-dev-4-2" not in listed.stdout

        attach = cli("attach", "4.2", "--print", "--socket", socket)
        assert attach.stdout.strip() == f"tmux -L {socket} attach -r -t =bmad-dev-4-2"
        assert cli("attach", "9.9", "--print", "--socket", socket).returncode == 2

        young = cli("cleanup", "--socket", socket, "--older-than", "1h")
        assert young.returncode == 0 and "0 session(s)" in young.stdout
        cleaned = cli("cleanup", "--socket", socket, "--older-than", "0s")
        assert cleaned.returncode == 0 and f"killed {orphan}" in cleaned.stdout
        assert not await mine.exists(orphan)
        assert await other.exists(foreign)  # another prefix is not ours to clean
    finally:
        await other.kill_all()
        await mine.kill_all()


def test_graph_subcommand_prints_mermaid() -> None:
    result = cli("graph", "--mermaid-only")
    assert result.returncode == 0
    for edge in ("sm", "po", "dev", "qa", "done", "failed"):
        assert edge in result.stdout
    assert result.stdout.lstrip().startswith(("graph", "---", "%%"))


def test_a_reader_that_stops_early_is_no_error() -> None:
    """`graph | head -1` once ended in a BrokenPipeError traceback and exit 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "graph"],
            cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_simulated_agent_is_runnable_for_rehearsals() -> None:
    # The --simulate agent must start from any working directory (it is run via -m).
    argv = simulated_argv("--help")
    result = subprocess.run(argv, capture_output=True, text=True, cwd=os.sep, timeout=30)
    assert result.returncode == 0 and "--po-nogo" in result.stdout


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        ("v6", "no readable _bmad/_config/manifest.yaml"),
        ("broken-core-config", "core-config.yaml: not valid YAML"),
        ("stories-is-a-file", "is not a folder"),
    ],
)
def test_a_project_that_cannot_be_driven_is_refused_before_anything_starts(
    demo: Path, socket: str, arrange: str, expected: str
) -> None:
    if arrange == "v6":
        shutil.rmtree(demo / ".bmad-core")
        (demo / "_bmad" / "bmm").mkdir(parents=True)
    elif arrange == "broken-core-config":
        (demo / ".bmad-core" / "core-config.yaml").write_text("qa: {\n")
    else:
        (demo / "docs" / "stories").write_text("not a folder")
    result = cli(write_epic(demo, socket))
    assert result.returncode == 2
    assert expected in result.stderr
    assert not TmuxServer(socket).alive()


async def test_an_unreadable_story_is_skipped_and_the_others_go_on(demo: Path, socket: str) -> None:
    stories_dir = demo / "docs" / "stories"
    stories_dir.mkdir(parents=True)
    (stories_dir / "1.1.story.md").write_bytes(b"# Story 1.1\n\n## Status\n\n\xff\xfe\n")
    result = cli(write_epic(demo, socket, stories=["1.1", "1.3"], parallel=1))
    assert result.returncode == 1, result.stdout + result.stderr
    by_id = stories(report(demo))
    assert by_id["1.1"]["result"] == "skipped"
    assert "cannot be read (UnicodeDecodeError)" in by_id["1.1"]["reason"]
    assert by_id["1.3"]["result"] == "done"
    assert "1.1" not in runs(demo)  # nothing was started on it


async def test_an_unexpected_error_fails_its_story_and_keeps_the_run_resumable(
    demo: Path, socket: str
) -> None:
    stories_dir = demo / "docs" / "stories"
    stories_dir.mkdir(parents=True)
    story = stories_dir / "1.1.story.md"
    story.write_bytes(b"# Story 1.1\n\n## Status\n\n\xff\xfe\n")
    epic = write_epic(demo, socket, stories=["1.1", "1.3"], parallel=1)
    # Started at Dev by hand, the story's unreadable file breaks the stage before any agent.
    result = cli(epic, "--only", "1.1", "--start-at", "dev")
    assert result.returncode == 1, result.stdout + result.stderr
    by_id = stories(report(demo))
    assert by_id["1.1"]["result"] == "error"
    assert "UnicodeDecodeError" in by_id["1.1"]["reason"]
    (record,) = load_records(demo / ".bmad-orchestrator")
    assert not record.finished  # so --resume can pick it up once the file is fixed
    assert await sessions_left(demo, socket) == []

    story.write_text("# Story 1.1: Add a todo\n\n## Status\n\nApproved\n\n## QA Results\n")
    resumed = cli(epic, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert runs(demo) == {"1.1": {"dev": 1, "qa": 1}}
    assert stories(report(demo))["1.1"]["result"] == "done"


async def test_nudges_show_on_the_board_and_in_the_report(demo: Path, socket: str) -> None:
    flags = ["--misbehave", "idle-turn", "--misbehave-stage", "sm", "--misbehave-story", "1.1"]
    epic = write_epic(demo, socket, stories=["1.1"], agent={"profile": "simulated", "flags": flags})
    result = cli(epic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "story 1.1: sm stopped without its output: nudge 1" in result.stdout
    (sm,) = [r for r in stories(report(demo))["1.1"]["runs"] if r["stage"] == "sm"]
    assert [n["reason"] for n in sm["nudges"]] == ["turn_end"]
    assert sm["turn"] == "signal"
    nudged = [e["reason"] for e in events(demo) if e["event"] == "nudge"]
    assert nudged == ["turn_end"]
