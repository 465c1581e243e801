"""`./dev.sh demo [v6]`: run the demo epic in a scratch copy, so the repository stays clean.

`examples/demo` is a BMad v4 project; `v6` picks `examples/demo-v6`, the same stories as a BMad
v6 project (classic cycle). The copy goes to `.demo-run/` (git-ignored) and is made fresh on
every run, so running the demo twice in a row works the same way twice. The copy is a git
repository of its own, so the v4 demo's two parallel stories run in worktrees and branches of
their own and merge one at a time (without git the stories share the folder). The run itself
removes its idle tmux server's socket.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from orchestrator.cli import main as cli_main
from orchestrator.git import Git, git_available

REPO = Path(__file__).resolve().parents[1]
SOURCES = {"v4": REPO / "examples" / "demo", "v6": REPO / "examples" / "demo-v6"}
SCRATCH = REPO / ".demo-run"


def main(argv: list[str]) -> int:
    """Run the demo epic (`v6` first: the v6 one) in a fresh scratch copy; the exit code."""
    version = argv[0] if argv and argv[0] in SOURCES else "v4"
    argv = argv[1:] if argv and argv[0] in SOURCES else argv
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    shutil.copytree(SOURCES[version], SCRATCH)
    if git_available():
        git = Git(SCRATCH)
        git.run("init", "--quiet")
        git.run("add", "--all")
        git.commit("-m", "The demo project")
    print(f"demo project copied to {SCRATCH}", flush=True)
    return cli_main([str(SCRATCH / "epic.yaml"), *argv])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
