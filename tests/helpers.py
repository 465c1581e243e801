"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from orchestrator.agents.simulated import read_runs
from orchestrator.tmux import TmuxAgentManager
from orchestrator.watch import wait_for_output

REPO = Path(__file__).resolve().parents[1]


def simulated_argv(*args: str) -> list[str]:
    """The simulated agent's command line, run by this interpreter."""
    return [sys.executable, "-m", "orchestrator.agents.simulated", *args]


def spawn_orphan(project: str, socket: str, prefix: str, agent: str, story: str) -> str:
    """A session whose orchestrator is gone: spawned by a process that has exited."""
    import subprocess

    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.agents.profiles import make_profile\n"
        "from orchestrator.tmux import TmuxAgentManager\n"
        "m = TmuxAgentManager(Path(sys.argv[1]), socket=sys.argv[2], prefix=sys.argv[3])\n"
        "s = asyncio.run(m.spawn(sys.argv[4], sys.argv[5],"
        " profile=make_profile('generic', ['sleep', '60'])))\n"
        "print(s.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, project, socket, prefix, agent, story],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


DEMO = REPO / "examples" / "demo"


def write_epic(folder: Path, socket: str, **overrides: Any) -> Path:
    """The demo epic on the test's socket, without the demo's work delay."""
    config = yaml.safe_load((DEMO / "epic.yaml").read_text())
    config["tmux"] = {"socket": socket, "session_prefix": "bmad"}
    config["agent"] = {"profile": "simulated", "flags": ["--qa-fail", "1.2=1"]}
    config.update(overrides)
    path = folder / "epic.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def report(project: Path) -> dict[str, Any]:
    (path,) = sorted((project / ".bmad-orchestrator" / "runs").glob("*/report.json"))[-1:]
    return json.loads(path.read_text())


def stories(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["story_id"]: s for s in data["stories"]}


def runs(project: Path) -> dict[str, dict[str, int]]:
    return read_runs(project / ".bmad-orchestrator")


async def sessions_left(project: Path, socket: str) -> list[str]:
    return [row.name for row in await TmuxAgentManager(project, socket=socket).list_sessions()]


async def wait_for_run(project: Path, story: str, stage: str) -> None:
    state = project / ".bmad-orchestrator"
    started = await wait_for_output(
        lambda: True if read_runs(state).get(story, {}).get(stage) else None,
        watch=[state / "simulated"],
        timeout=60,
    )
    assert started.done, f"{story} {stage} never started"
