"""Many stories at once: how close a run comes to ideal, and what the orchestrator costs.

    python -m bench scale --stories 100 --parallel 8 --work 1s [--profile FILE]

N independent stories x 4 stages, `--parallel` at once, an agent that works `--work` per stage.
Ideal: ceil(N / parallel) x 4 x work (equal stages, no overhead). Prints the run's wall time
against ideal, the orchestrator's CPU (its tmux client calls included) as a share of one core
and per stage, the tmux server's CPU, and the peak RSS. `--profile` records the run with py-spy
(all threads) in its raw format (feed it to flamegraph.pl or speedscope).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from bench.common import Measured, project, run, socket_name


def scale(
    stories: int, parallel: int, work: float, *, profile: Path | None = None
) -> tuple[Measured, float]:
    """One run of the scenario; (its measures, the ideal wall time)."""
    with tempfile.TemporaryDirectory() as folder:
        socket = socket_name()
        epic = project(Path(folder) / "project", stories, parallel, socket, work)
        measured = run(epic, socket, profile=profile)
    return measured, math.ceil(stories / parallel) * 4 * work


def report(stories: int, parallel: int, work: float, measured: Measured, ideal: float) -> str:
    """The figures, one per line."""
    stages = stories * 4
    return "\n".join(
        [
            f"{stories} stories x 4 stages, parallel {parallel}, {work:g}s of agent work per stage",
            f"exit code          {measured.exit_code}",
            f"wall               {measured.wall:.1f}s (ideal {ideal:.1f}s: "
            f"{measured.wall / ideal:.2f}x)",
            f"orchestrator CPU   {measured.cpu:.1f}s = {100 * measured.cpu / measured.wall:.1f}% "
            f"of a core, {1000 * measured.cpu / stages:.1f} ms per stage",
            f"tmux server CPU    {measured.tmux_cpu:.1f}s "
            f"(its children, log capture and agent shells: {measured.children_cpu:.1f}s)",
            f"peak RSS           {measured.peak_rss_mb:.0f} MB",
        ]
    )
