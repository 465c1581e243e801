"""The story graph: SM -> PO -> Dev -> QA -> Done, with the loops BMad needs.

`build_story_graph()` returns the uncompiled graph so users compile it with their own checkpointer
or add it to their own graph; `graph` is the same graph compiled without a checkpointer, for
LangGraph Studio (`langgraph.json`), which refuses graphs that carry one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START, StateGraph

from nodes import (
    done_node,
    failed_node,
    make_stage_node,
    route_after_dev,
    route_after_po,
    route_after_qa,
    route_after_sm,
    route_start,
)
from orchestrator.context import StoryContext
from orchestrator.files import PRIVATE_FILE_MODE, ensure_private_dir
from state import StoryState

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

STAGE_ROUTES = {
    "sm": route_after_sm,
    "po": route_after_po,
    "dev": route_after_dev,
    "qa": route_after_qa,
}


STATE_TYPES = [
    ("state.story", name)
    for name in ("StoryState", "StoryPolicy", "AttemptRecord", "RecoveryEntry")
]


def checkpoint_serializer() -> JsonPlusSerializer:
    """A serializer that allows the story state's pydantic models and nothing else.

    LangGraph warns on (and will block) unregistered types read back from a checkpoint; pass
    this as `serde=` to the checkpointer you compile the story graph with.
    """
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


@contextlib.asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """An async SQLite checkpointer for the story graph, its file owner-only."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    ensure_private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
    os.chmod(path, PRIVATE_FILE_MODE)
    async with aiosqlite.connect(str(path)) as conn:
        yield AsyncSqliteSaver(conn, serde=checkpoint_serializer())


def build_story_graph() -> StateGraph[StoryState, StoryContext, StoryState, StoryState]:
    """The uncompiled story graph (state `StoryState`, context `StoryContext`)."""
    builder = StateGraph(StoryState, context_schema=StoryContext)
    for stage, route in STAGE_ROUTES.items():
        builder.add_node(stage, make_stage_node(stage))  # type: ignore[call-overload, arg-type]
        builder.add_conditional_edges(stage, route)
    builder.add_node("done", done_node)
    builder.add_node("failed", failed_node)
    builder.add_conditional_edges(START, route_start)
    builder.set_finish_point("done")
    builder.set_finish_point("failed")
    return builder


graph = build_story_graph().compile(name="story")
