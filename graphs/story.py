"""The story graph: SM -> PO -> Dev -> QA -> Done, with the loops BMad needs.

`build_story_graph()` returns the uncompiled graph so users compile it with their own checkpointer
or add it to their own graph; `graph` is the same graph compiled without a checkpointer, for
LangGraph Studio (`langgraph.json`), which refuses graphs that carry one.
"""

from __future__ import annotations

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
from state import StoryState

STAGE_ROUTES = {
    "sm": route_after_sm,
    "po": route_after_po,
    "dev": route_after_dev,
    "qa": route_after_qa,
}


def build_story_graph() -> StateGraph:
    """The uncompiled story graph (state `StoryState`, context `StoryContext`)."""
    builder = StateGraph(StoryState, context_schema=StoryContext)
    for stage, route in STAGE_ROUTES.items():
        builder.add_node(stage, make_stage_node(stage))  # type: ignore[arg-type]
        builder.add_conditional_edges(stage, route)
    builder.add_node("done", done_node)
    builder.add_node("failed", failed_node)
    builder.add_conditional_edges(START, route_start)
    builder.set_finish_point("done")
    builder.set_finish_point("failed")
    return builder


graph = build_story_graph().compile(name="story")
