"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import sys


def simulated_argv(*args: str) -> list[str]:
    """The simulated agent's command line, run by this interpreter."""
    return [sys.executable, "-m", "orchestrator.simulated_agent", *args]


def spawn_orphan(project: str, socket: str, prefix: str, agent: str, story: str) -> str:
    """A session whose orchestrator is gone: spawned by a process that has exited."""
    import subprocess

    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.profiles import make_profile\n"
        "from orchestrator.sessions import TmuxAgentManager\n"
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
