"""Runs one story through the story graph under a SQLite checkpointer (a separate process).

Used by the crash test: `python -m tests.story_runner PROJECT SOCKET DB THREAD [SIM ARGS...]`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from orchestrator.graphs.story import build_story_graph, sqlite_checkpointer
from tests.helpers import story_context


async def run(project: Path, socket: str, db: Path, thread: str, sim_args: list[str]) -> str:
    context = story_context(project, socket, *sim_args, record=False)
    config = {"configurable": {"thread_id": thread}}
    async with sqlite_checkpointer(db) as saver:
        graph = build_story_graph().compile(checkpointer=saver)
        snapshot = await graph.aget_state(config)
        payload = None if snapshot.next else {"story_id": "1.1"}
        output = await graph.ainvoke(
            payload, config, context=context, durability="sync", version="v2"
        )
    return output.value.result


if __name__ == "__main__":
    project, socket, db, thread, *sim = sys.argv[1:]
    print(asyncio.run(run(Path(project), socket, Path(db), thread, sim)))
