"""`./dev.sh demo`: run the demo epic in a scratch copy, so the repository stays clean.

The copy goes to `.demo-run/` (git-ignored) and is made fresh on every run, so running the demo
twice in a row works the same way twice.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from orchestrator.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "examples" / "demo"
SCRATCH = REPO / ".demo-run"


def main(argv: list[str]) -> int:
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    shutil.copytree(SOURCE, SCRATCH)
    print(f"demo project copied to {SCRATCH}", flush=True)
    try:
        return cli_main([str(SCRATCH / "epic.yaml"), *argv])
    finally:
        _remove_idle_server()


def _remove_idle_server() -> None:
    """The demo owns its socket: once its sessions are gone, leave no server or socket file."""
    import asyncio

    from orchestrator.config import load_epic
    from orchestrator.sessions import TmuxAgentManager

    config = load_epic(SCRATCH / "epic.yaml")
    socket, state_dir = config.tmux.socket, config.state_dir
    manager = TmuxAgentManager(config.project, socket=socket, state_dir=state_dir)
    if not asyncio.run(manager.list()):
        manager.kill_server()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
