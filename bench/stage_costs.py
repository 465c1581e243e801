"""What one stage costs the orchestrator, next to what tmux itself costs.

    python -m bench.stage_costs [REPETITIONS]

Runs on its own private tmux socket (never the default server) in a scratch project and kills
only that server. Prints median / p90 / max in milliseconds per step.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from orchestrator.agents.profiles import make_profile
from orchestrator.methods.bmad_v4 import BmadPaths
from orchestrator.stages import StageRequest, check_stage_output, default_prompt, watch_dirs
from orchestrator.tmux import TmuxAgentManager
from orchestrator.tmux.screen import wait_until_ready
from orchestrator.watch import filesystem_now, shared_watcher, wait_for_output

LINE = "/BMad:agents:dev *develop-story docs/stories/1.1.story.md @x 'q' \"q\" $HOME\n"
PROMPT_4KB = (LINE * 60)[:4096]


def row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"| {name} | {statistics.median(ms):.1f} | {p90:.1f} | {ms[-1]:.1f} | {len(ms)} |"


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


def raw_tmux(socket: str, n: int) -> tuple[list[float], list[float]]:
    """`tmux new-session -d` and `kill-session` as plain subprocesses: the floor."""
    spawn, kill = [], []
    for i in range(n):
        name = f"raw-{i}"
        started = time.perf_counter()
        subprocess.run(
            [*("tmux", "-L", socket, "new-session", "-d", "-s", name), "sleep", "60"],
            check=True,
        )
        spawn.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(["tmux", "-L", socket, "kill-session", "-t", f"={name}"], check=True)
        kill.append(time.perf_counter() - started)
    return spawn, kill


async def main(n: int) -> None:
    socket = f"bmad-bench-{uuid.uuid4().hex[:8]}"
    project = Path(tempfile.mkdtemp(prefix="bmad-bench-"))
    (project / ".bmad-core").mkdir()
    (project / ".bmad-core" / "core-config.yaml").write_text("devStoryLocation: docs/stories\n")
    manager = TmuxAgentManager(project, socket=socket)
    # Keep the tmux server up between steps, as in a real run, so each step costs one session.
    keeper = await manager.spawn("keep", "0", profile=make_profile("generic", ["sleep", "600"]))
    anchor = asyncio.create_task(  # keeps the shared watcher running between measurements
        wait_for_output(lambda: None, watch=[project / "anchor"], timeout=3600)
    )
    results: dict[str, list[float]] = {}
    try:
        (
            results["raw tmux new-session (subprocess)"],
            results["raw tmux kill-session"],
        ) = await asyncio.to_thread(raw_tmux, socket, n)
        generic = make_profile("generic", ["sleep", "60"])
        simulated = make_profile("simulated", ready_timeout=30)
        typed = replace(simulated, prompt_via_argv=False)
        paths = BmadPaths.load(project)
        for i in range(n):
            story = f"9.{i}"
            session = None

            async def spawn_generic(story: str = story) -> None:
                nonlocal session
                session = await manager.spawn("dev", story, profile=generic)

            results.setdefault("spawn (generic, sleep)", []).append(await timed(spawn_generic))
            assert session is not None
            name = session.name
            results.setdefault("kill (process group + session)", []).append(
                await timed(lambda name=name: manager.kill(name))
            )

            async def spawn_sim(story: str = story) -> None:
                nonlocal session
                session = await manager.spawn("po", story, profile=typed)

            results.setdefault("spawn (simulated agent)", []).append(await timed(spawn_sim))
            sim = session
            assert sim is not None
            results.setdefault("ready (until `sim> ` shows)", []).append(
                await timed(
                    lambda sim=sim: wait_until_ready(manager.server, sim, typed, manager.events)
                )
            )
            results.setdefault("typed delivery, 4 KB", []).append(
                await timed(lambda sim=sim: manager.deliver(sim, PROMPT_4KB, typed))
            )
            await manager.kill(sim.name)

            target = project / "detect" / f"{i}.md"
            target.parent.mkdir(exist_ok=True)
            waiter = asyncio.create_task(
                wait_for_output(
                    lambda target=target: target.exists() or None,
                    watch=[target.parent],
                    timeout=30,
                )
            )
            watcher = shared_watcher()
            while not any(target.parent.resolve() in s.dirs for s in watcher._subs):
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.05)  # bench only: let the subscription's first check pass
            written = time.perf_counter()
            target.write_text("done")
            await waiter
            results.setdefault("detection (write -> wait returns)", []).append(
                time.perf_counter() - written
            )

            async def one_stage(story: str = story) -> None:
                request = StageRequest("sm", story)
                since = filesystem_now(manager.state_dir / "run")
                stage = await manager.spawn(
                    "sm", story, profile=simulated, prompt=default_prompt(request, paths)
                )
                result = await wait_for_output(
                    lambda: check_stage_output(request, paths, since_ns=since),
                    watch=watch_dirs(request, paths),
                    probe=manager.probe(stage),
                    timeout=30,
                )
                assert result.done, result
                await manager.kill(stage.name)

            results.setdefault("one SM stage end to end (simulated)", []).append(
                await timed(one_stage)
            )
    finally:
        anchor.cancel()
        await manager.kill(keeper.name)
        await manager.kill_all()
        manager.server.kill()
        shutil.rmtree(project, ignore_errors=True)
    print(f"{n} repetitions, socket {socket} (killed)\n")
    print("| step | median ms | p90 ms | max ms | n |\n|---|---|---|---|---|")
    for name, samples in results.items():
        print(row(name, samples))
    print()
    for label, module in (
        ("orchestrator --help", "orchestrator"),
        ("simulated agent --help", "orchestrator.agents.simulated"),
    ):
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", module, "--help"], capture_output=True, check=True
            )
            samples.append(time.perf_counter() - started)
        print(row(f"start-up: python -m {label}", samples))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
