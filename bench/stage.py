"""One stage's cost to the orchestrator, next to the floor: a bare tmux spawn and kill.

    python -m bench stage [--stories 10]

Stories one after another (parallel 1) with an instant agent (a shell script that writes its
file and signals its turn end). A run of N stories and one of 2N: the difference, per extra
stage, is what a stage costs beyond the agent, without the process start-up both runs share.
The floor, measured in the same run: `tmux new-session -d` + `kill-session` from a subprocess,
the least a stage in its own session can cost. Also times `python -m orchestrator --help`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import project, run, socket_name
from orchestrator.tmux.names import socket_path


def tmux_floor(pairs: int = 20) -> float:
    """Median seconds of one bare `new-session` + `kill-session` pair (a private server)."""
    socket = socket_name()
    keep = ["tmux", "-L", socket, "new-session", "-d", "-s", "keep", "sleep", "100000"]
    subprocess.run(keep, check=True)
    times = []
    try:
        for n in range(pairs):
            started = time.perf_counter()
            subprocess.run(
                ["tmux", "-L", socket, "new-session", "-d", "-s", f"s{n}", "sleep", "60"],
                check=True,
            )
            subprocess.run(["tmux", "-L", socket, "kill-session", "-t", f"=s{n}"], check=True)
            times.append(time.perf_counter() - started)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
        socket_path(socket).unlink(missing_ok=True)  # tmux leaves its socket file behind
    return statistics.median(times)


def help_time(repetitions: int = 5) -> float:
    """Median seconds of `python -m orchestrator --help`."""
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "orchestrator", "--help"], capture_output=True, check=True
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def stage(stories: int) -> str:
    """The figures, one per line."""
    runs = []
    for count in (stories, 2 * stories):
        with tempfile.TemporaryDirectory() as folder:
            socket = socket_name()
            epic = project(Path(folder) / "project", count, 1, socket, 0.0)
            runs.append(run(epic, socket))
    small, large = runs
    extra = 4 * stories
    per_stage = (large.wall - small.wall) / extra
    cpu = (large.cpu + large.tmux_cpu - small.cpu - small.tmux_cpu) / extra
    floor = tmux_floor()
    return "\n".join(
        [
            f"{stories} and {2 * stories} stories x 4 stages one after another, an instant agent",
            f"exit codes           {small.exit_code}, {large.exit_code}",
            f"per stage (wall)     {1000 * per_stage:.0f} ms  "
            f"(floor: tmux spawn + kill {1000 * floor:.1f} ms; {per_stage / floor:.1f}x)",
            f"per stage (CPU)      {1000 * cpu:.0f} ms  (orchestrator, its tmux calls and server)",
            f"run start-up         {1000 * (small.wall - stories * 4 * per_stage):.0f} ms",
            f"--help               {1000 * help_time():.0f} ms",
        ]
    )
