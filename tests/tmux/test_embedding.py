"""A user's own graph embeds the story graph as a node and reads its result."""

from __future__ import annotations

from pathlib import Path

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from orchestrator.graphs.story import build_story_graph
from orchestrator.state.context import StoryContext
from tests.helpers import story_context


class ReleaseState(BaseModel):
    """The parent's own state: it shares `story_id`, `result`, `failure_reason` by name."""

    story_id: str
    release_notes: str = ""
    result: str | None = None
    failure_reason: str | None = None


def announce(state: ReleaseState) -> dict:
    return {"release_notes": f"story {state.story_id}: {state.result}"}


async def test_a_parent_graph_runs_a_story_through_the_story_graph(
    project: Path, socket: str
) -> None:
    parent = StateGraph(ReleaseState, context_schema=StoryContext)
    parent.add_node("story", build_story_graph().compile())
    parent.add_node("announce", announce)
    parent.add_edge(START, "story")
    parent.add_edge("story", "announce")
    parent.add_edge("announce", END)
    context = story_context(project, socket)
    try:
        output = await parent.compile().ainvoke({"story_id": "2.1"}, context=context, version="v2")
        assert output.value.result == "done"
        assert output.value.release_notes == "story 2.1: done"
        assert await context.manager().list_sessions() == []
    finally:
        context.manager().server.kill()
