"""The story graph: SM -> PO -> Dev -> QA -> integrate -> Done, with the loops BMad needs.

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

from orchestrator.blocking import FILES
from orchestrator.errors import CheckpointError
from orchestrator.files import StateDir, open_private
from orchestrator.nodes import (
    done_node,
    failed_node,
    gate_node,
    integrate_node,
    make_stage_node,
    over_budget_node,
    route_after_dev,
    route_after_gate,
    route_after_integrate,
    route_after_po,
    route_after_qa,
    route_after_sm,
    route_start,
)
from orchestrator.state import StoryContext, StoryInput, StoryOutput, StoryState

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

STAGE_ROUTES = {
    "sm": route_after_sm,
    "po": route_after_po,
    "dev": route_after_dev,
    "qa": route_after_qa,
}


STATE_TYPES = [
    ("orchestrator.state.story", name)
    for name in (
        "StoryState",
        "StoryInput",
        "StoryOutput",
        "StoryPolicy",
        "AttemptRecord",
        "NudgeRecord",
        "RecoveryEntry",
        "Budget",
        "GateRecord",
    )
] + [("orchestrator.agents.usage", "Usage")]


def checkpoint_serializer() -> JsonPlusSerializer:
    """A serializer that allows the story state's pydantic models and nothing else.

    LangGraph warns on (and will block) unregistered types read back from a checkpoint; pass
    this as `serde=` to the checkpointer you compile the story graph with.
    """
    return JsonPlusSerializer(allowed_msgpack_modules=STATE_TYPES)


def check_sqlite_checkpoint(path: Path) -> None:
    """Raise `CheckpointError` if an existing checkpoint file is truncated or corrupt.

    A checkpoint is created with its tables at once, so an empty file was cut short after the
    fact: reading it as "no history" would silently start finished stories again.
    """
    import sqlite3

    try:
        size = os.lstat(path).st_size
    except FileNotFoundError:
        return
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (truncated)")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt ({exc})") from None
    if verdict is None or verdict[0] != "ok":
        raise CheckpointError(f"checkpoint {path} is corrupt ({verdict[0] if verdict else '?'})")


@contextlib.asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """An async SQLite checkpointer for the story graph, its file owner-only.

    The journal is a WAL synced at checkpoints, not at every commit (`synchronous=NORMAL`): a
    commit survives the orchestrator being killed at any point, only an OS crash or power loss
    can take back the last few steps. Raises `CheckpointError` when the file exists but is
    truncated or corrupt.
    """
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = await FILES.run(StateDir(path.parent).file, path)
    await FILES.run(check_sqlite_checkpoint, path)
    os.close(await FILES.run(open_private, path, os.O_WRONLY))
    async with aiosqlite.connect(str(path)) as conn:
        saver = AsyncSqliteSaver(conn, serde=checkpoint_serializer())
        await saver.setup()  # also switches the journal to WAL
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


def build_story_graph() -> StateGraph[StoryState, StoryContext, StoryInput, StoryOutput]:
    """The uncompiled story graph: `StoryInput` in, `StoryOutput` out, `StoryContext` around."""
    builder = StateGraph(
        StoryState,
        context_schema=StoryContext,
        input_schema=StoryInput,
        output_schema=StoryOutput,
    )
    for stage, route in STAGE_ROUTES.items():
        builder.add_node(stage, make_stage_node(stage))  # type: ignore[call-overload, arg-type]
        builder.add_conditional_edges(stage, route)
    builder.add_node("gate", gate_node)
    builder.add_conditional_edges("gate", route_after_gate)
    builder.add_node("integrate", integrate_node)  # type: ignore[call-overload]
    builder.add_conditional_edges("integrate", route_after_integrate)
    builder.add_node("done", done_node)
    builder.add_node("failed", failed_node)
    builder.add_node("over_budget", over_budget_node)
    builder.add_conditional_edges(START, route_start)
    builder.set_finish_point("done")
    builder.set_finish_point("failed")
    builder.set_finish_point("over_budget")
    return builder


graph = build_story_graph().compile(name="story")
