"""How fast a stage ends once the agent's turn is over.

    python -m bench.turn_end [REPETITIONS]

Two paths of the completion rule, each through the real stage node (spawn, wait, kill) on a
private tmux socket:
- signal: the agent writes the story, then (0.3 s later) the turn-end file; measured from the
  turn-end write to the node's return.
- quiet: the agent writes the story and then nothing at all; measured as the node's return minus
  the story write minus `settle`.
Prints median / p90 / max in milliseconds.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from orchestrator.nodes.stage import run_stage
from orchestrator.stages import STAGES
from orchestrator.state import StoryState
from orchestrator.state.context import AgentSettings, StageSettings, StoryContext

SETTLE = 1.0
# The agent: write the story, note when; optionally signal the turn end 0.3 s later, note when.
AGENT = """
import os, sys, time
signal = sys.argv[1] == "signal"
os.makedirs("docs/stories", exist_ok=True)
with open("docs/stories/1.1.story.md", "w") as f:
    f.write("# Story 1.1: x\\n\\n## Status\\n\\nDraft\\n")
written = time.time_ns()
if signal:
    time.sleep(0.3)
    signalled = time.time_ns()
    with open(os.environ["BMAD_TURN_END_FILE"], "w") as f:
        f.write("{}")
else:
    signalled = 0
with open(sys.argv[2], "w") as f:
    f.write(f"{written} {signalled}")
time.sleep(600)
"""


async def one(project: Path, socket: str, mode: str) -> float:
    stamps = project / f"stamps-{uuid.uuid4().hex}"
    story = project / "docs" / "stories" / "1.1.story.md"
    story.unlink(missing_ok=True)
    command = [sys.executable, "-c", AGENT, mode, str(stamps)]
    context = StoryContext(
        project=project,
        socket=socket,
        agent=AgentSettings(profile="generic", command=command, settle=SETTLE),
        stages={s: StageSettings(timeout=30, stall_timeout=None) for s in STAGES},
    )
    update = await run_stage("sm", StoryState(story_id="1.1"), context)
    returned = time.time_ns()
    (record,) = update["runs"]
    expected = "signal" if mode == "signal" else "quiet"
    assert record.turn == expected, (record.turn, record.end, record.detail)
    written, signalled = map(int, stamps.read_text().split())
    if mode == "signal":
        return (returned - signalled) / 1e9
    return (returned - written) / 1e9 - SETTLE


def row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"| {name} | {statistics.median(ms):.1f} | {p90:.1f} | {ms[-1]:.1f} | {len(ms)} |"


async def main(repetitions: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bmad-bench-"))
    socket = f"bmad-bench-{uuid.uuid4().hex[:8]}"
    project = scratch / "project"
    (project / ".bmad-core").mkdir(parents=True)
    context = StoryContext(project=project, socket=socket)
    try:
        signal = [await one(project, socket, "signal") for _ in range(repetitions)]
        quiet = [await one(project, socket, "quiet") for _ in range(repetitions)]
    finally:
        context.manager().server.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    print("| path | median | p90 | max | n |\n|---|---|---|---|---|")
    print(row("turn-end signal written -> node returns", signal))
    print(row(f"quiet: node returns - story written - settle ({SETTLE:g} s)", quiet))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
