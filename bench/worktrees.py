"""What worktree isolation costs a story, next to the agent time it protects.

    python -m bench.worktrees [REPETITIONS] [INSTALL_FILES]

A committed project with an untracked install of INSTALL_FILES files (a real BMad v4.44.3
install with its Claude commands is about 200) on a local disk. Per story: its worktree made from
the integration branch (the install copied in), a commit of one changed file, the merge into the
integration branch, and the worktree and branch removed. Prints median / p90 / max in ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator.git import Worktrees, commit, merge_story

STEPS = ("worktree", "commit", "merge", "remove")


def project(root: Path, install_files: int) -> Path:
    """A committed project plus an untracked install."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.txt").write_text("app\n")
    (root / ".gitignore").write_text(".bmad-orchestrator/\n")
    for n in range(install_files):
        path = root / ".bmad-core" / f"part{n // 50}" / f"file{n}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# install file {n}\n" * 40)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "src", ".gitignore"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], cwd=root, check=True)
    return root


def main(repetitions: int, install_files: int) -> None:
    """Time each step of `repetitions` stories."""
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    with tempfile.TemporaryDirectory() as folder:
        root = project(Path(folder) / "project", install_files)
        trees = Worktrees(root, root / ".bmad-orchestrator", branch="bmad/b", install=[".bmad-*"])
        trees.prepare()
        for n in range(repetitions):
            story = f"{n}.1"
            started = time.perf_counter()
            workspace = trees.story(story)
            times["worktree"].append(time.perf_counter() - started)
            (workspace.root / "src" / f"story{n}.txt").write_text("work\n")
            started = time.perf_counter()
            commit(trees, workspace, f"bmad({story}): dev implemented")
            times["commit"].append(time.perf_counter() - started)
            started = time.perf_counter()
            assert merge_story(trees, workspace, f"bmad: merge story {story}").merged
            times["merge"].append(time.perf_counter() - started)
            started = time.perf_counter()
            trees.remove(workspace, delete_branch=True)
            times["remove"].append(time.perf_counter() - started)
    print(f"{repetitions} stories, {install_files} install files copied into each worktree")
    for step in STEPS:
        ms = sorted(t * 1000 for t in times[step])
        p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
        print(f"{step:>9}: median {statistics.median(ms):7.1f}  p90 {p90:7.1f}  max {ms[-1]:7.1f}")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 20,
        int(sys.argv[2]) if len(sys.argv) > 2 else 200,
    )
