"""Kill the orchestrator hard in the middle of Dev; the same thread resumes without redoing work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator.agents.simulated import read_runs
from orchestrator.tmux import TmuxAgentManager
from orchestrator.watch import wait_for_output
from tests.helpers import REPO


def runner(project: Path, socket: str, db: Path, *sim: str) -> list[str]:
    return [sys.executable, "-m", "tests.story_runner", str(project), socket, str(db), "t-1", *sim]


async def test_resume_after_a_hard_kill_does_not_rerun_finished_stages(
    project: Path, socket: str, tmp_path: Path
) -> None:
    db = tmp_path / "checkpoints.sqlite"
    state_dir = project / ".bmad-orchestrator"
    sim = ("--misbehave", "hang", "--misbehave-stage", "dev", "--misbehave-times", "1")
    first = subprocess.Popen(runner(project, socket, db, *sim), cwd=REPO)
    try:
        started = await wait_for_output(
            lambda: True if read_runs(state_dir).get("1.1", {}).get("dev") else None,
            watch=[state_dir / "simulated"],
            timeout=60,
        )
        assert started.done, "Dev never started"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert first.returncode == -signal.SIGKILL
    assert read_runs(state_dir)["1.1"] == {"sm": 1, "po": 1, "dev": 1}

    second = subprocess.run(
        runner(project, socket, db, *sim), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip().splitlines()[-1] == "done"
    assert read_runs(state_dir)["1.1"] == {"sm": 1, "po": 1, "dev": 2, "qa": 1}
    manager = TmuxAgentManager(project, socket=socket)
    assert await manager.list_sessions() == []
    assert os.stat(db).st_size > 0
