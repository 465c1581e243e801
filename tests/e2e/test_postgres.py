"""The Postgres checkpointer against a real Postgres server (the distribution's own binaries,
on a private port and data folder): resume after a hard kill, one writer per story across
runs, and a password that never shows."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import psycopg

from orchestrator.agents.simulated import read_runs
from orchestrator.defaults import STATE_DIR_NAME
from tests.helpers import (
    cli,
    report,
    runs,
    sessions_left,
    start_cli,
    stories,
    wait_for_run,
    write_epic,
)

SECRET = "n0t-this-secret"


def slow_dev_epic(demo: Path, socket: str, url: str, **overrides: object) -> Path:
    return write_epic(
        demo,
        socket,
        parallel=1,
        stories=["1.1"],
        checkpointer=url,
        agent={"profile": "simulated"},
        stages={"dev": {"agent": {"profile": "simulated", "flags": ["--work-seconds", "3"]}}},
        **overrides,
    )


def thread_writes(url: str, story: str) -> dict[str, int]:
    """Checkpoints per thread of `story` in the database."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select thread_id, count(*) from checkpoints where thread_id like %s group by 1",
            (f"%:{story}",),
        ).fetchall()
    return {str(thread): int(count) for thread, count in rows}


async def test_a_story_killed_mid_dev_resumes_from_postgres(
    demo: Path, socket: str, postgres_url: str
) -> None:
    epic = slow_dev_epic(demo, socket, postgres_url, name="resume-test")
    process = start_cli(epic)
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    resumed = cli(epic, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}  # Dev was not restarted
    data = report(demo)
    (story,) = data["stories"]
    assert [r["adopted"] for r in story["runs"] if r["stage"] == "dev"] == [True]
    assert story["result"] == "done"
    assert not (demo / STATE_DIR_NAME / "checkpoints.sqlite").exists()  # it was all Postgres
    assert thread_writes(postgres_url, "1.1")[f"{data['run_id']}:1.1"] > 4
    assert await sessions_left(demo, socket) == []


async def test_a_second_run_of_a_story_is_refused_and_its_history_never_forks(
    demo: Path, socket: str, postgres_url: str, tmp_path: Path
) -> None:
    first = slow_dev_epic(demo, socket, postgres_url, name="fork-test")
    process = start_cli(first)
    await wait_for_run(demo, "1.1", "dev")
    # Another "host": its own state dir (lock, records) and tmux server, the same database.
    other_state = tmp_path / "other-host-state"
    other = write_epic(
        tmp_path,
        socket + "-b",
        parallel=1,
        stories=["1.1"],
        project=str(demo),
        state_dir=str(other_state),
        checkpointer=postgres_url,
        name="fork-test",
        agent={"profile": "simulated"},
    )
    second = cli(other, "--plain")
    assert second.returncode == 1, second.stdout + second.stderr
    other_run = json.loads(next(other_state.glob("runs/*/report.json")).read_text())
    skipped = stories(other_run)
    assert skipped["1.1"]["result"] == "skipped"
    assert "another run is driving story 1.1 (bmad-orchestrator locks" in skipped["1.1"]["reason"]
    assert read_runs(other_state) == {}  # nothing of 1.1 started there
    out, err = await asyncio.to_thread(process.communicate, timeout=120)
    assert process.returncode == 0, out + err
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}
    threads = thread_writes(postgres_url, "1.1")
    first_run = json.loads(next((demo / STATE_DIR_NAME).glob("runs/*/report.json")).read_text())
    assert threads[f"{first_run['run_id']}:1.1"] > 4  # one history: the first run's
    assert f"{other_run['run_id']}:1.1" not in threads  # the refused run wrote none


def test_the_password_never_shows(demo: Path, socket: str, postgres_url: str) -> None:
    closed = postgres_url.rsplit(":", 1)[0] + ":1/postgres"  # nothing listens on port 1
    refused = cli(write_epic(demo, socket, stories=["1.1"], checkpointer=closed))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot reach the Postgres checkpointer at postgresql://127.0.0.1:1/…#" in refused.stderr
    missing = cli(write_epic(demo, socket, stories=["1.1"], checkpointer="$BMAD_NO_SUCH_URL"))
    assert missing.returncode == 2
    assert "environment variable BMAD_NO_SUCH_URL is not set" in missing.stderr
    epic = write_epic(
        demo,
        socket,
        stories=["1.1"],
        parallel=1,
        checkpointer="${BMAD_TEST_PG}",
        name="password-test",
        agent={"profile": "simulated"},
    )
    ran = cli(epic, "--plain", env={"BMAD_TEST_PG": postgres_url})
    assert ran.returncode == 0, ran.stdout + ran.stderr
    dry = cli(write_epic(demo, socket, stories=["1.1"], checkpointer=postgres_url), "--dry-run")
    assert "checkpointer: postgresql://127.0.0.1:" in dry.stdout
    written = [p.read_text(errors="replace") for p in (demo / STATE_DIR_NAME).rglob("*.json*")]
    for text in (refused.stdout, refused.stderr, ran.stdout, ran.stderr, dry.stdout, *written):
        assert SECRET not in text
