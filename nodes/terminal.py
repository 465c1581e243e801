"""The two ends of the story graph."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from nodes.routing import failure_reason
from state import StoryContext, StoryState


async def done_node(state: StoryState, runtime: Runtime[StoryContext]) -> dict[str, Any]:
    """QA passed: the method's last move (Status Done, which no BMad agent makes), and finish."""
    if state.story_file and state.start_at != "done":
        context = runtime.context or StoryContext()
        project = await asyncio.to_thread(context.method_project)
        await asyncio.to_thread(project.finish_story, Path(state.story_file))
    return {"result": "done", "failure_reason": None}


async def failed_node(state: StoryState) -> dict[str, Any]:
    """Record why the story stopped; logs and the story file are left as they are."""
    return {"result": "failed", "failure_reason": failure_reason(state)}
