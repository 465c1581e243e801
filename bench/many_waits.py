"""Fifty stories waiting at once: threads, detection latency and idle CPU of the shared watcher.

    python -m bench.many_waits [WAITERS] [IDLE_SECONDS]

No tmux involved: this isolates `wait_for_output` and its one watchfiles watcher per event loop.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from orchestrator.filewatch import shared_watcher
from orchestrator.watch import wait_for_output


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(waiters: int, idle: float) -> None:
    root = Path(tempfile.mkdtemp(prefix="bmad-waits-"))
    targets = [root / f"story-{i}" / "out.md" for i in range(waiters)]
    written: dict[Path, float] = {}
    seen: dict[Path, float] = {}

    def check(target: Path) -> bool | None:
        if target.exists():
            seen.setdefault(target, time.perf_counter())
            return True
        return None

    threads_before = threading.active_count()
    tasks = [
        asyncio.create_task(
            wait_for_output(lambda t=t: check(t), watch=[t.parent], timeout=idle + 60)
        )
        for t in targets
    ]
    watcher = shared_watcher()
    while len(watcher._subs) < waiters:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.2)  # bench only: let the watcher settle before measuring idle cost
    threads_waiting = threading.active_count()
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(idle)
    idle_cpu = cpu_seconds() - cpu_before
    idle_wall = time.perf_counter() - wall_before
    for target in targets:  # folders appear late, as a stories folder does on the first story
        target.parent.mkdir()
        written[target] = time.perf_counter()
        target.write_text("done")
    results = await asyncio.gather(*tasks)
    assert all(r.done for r in results), results
    latencies = sorted((seen[t] - written[t]) * 1000 for t in targets)
    await asyncio.sleep(0)
    threads_after = threading.active_count()
    shutil.rmtree(root)
    p90 = latencies[int(len(latencies) * 0.9)]
    print(f"{waiters} concurrent waits, one shared watcher\n")
    print("| measure | value |\n|---|---|")
    print(
        f"| threads before / while waiting / after | "
        f"{threads_before} / {threads_waiting} / {threads_after} |"
    )
    print(
        f"| CPU while idle-waiting | {idle_cpu * 1000:.0f} ms over {idle_wall:.1f} s "
        f"({idle_cpu / idle_wall * 100:.2f} % of one core) |"
    )
    print(
        f"| detection latency (folder + file created -> check passes) | median "
        f"{statistics.median(latencies):.1f} ms, p90 {p90:.1f} ms, max {latencies[-1]:.1f} ms |"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    asyncio.run(main(count, seconds))
