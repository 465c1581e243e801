"""The two ends of the story graph."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nodes.routing import failure_reason
from state import StoryState


async def done_node(state: StoryState) -> dict[str, Any]:
    """QA passed: set Status Done (BMad agents never do; the story owner does) and finish."""
    from orchestrator.bmad import Status, set_status

    if state.story_file and state.start_at != "done":
        await asyncio.to_thread(set_status, Path(state.story_file), Status.DONE.value)
    return {"result": "done", "failure_reason": None}


async def failed_node(state: StoryState) -> dict[str, Any]:
    """Record why the story stopped; logs and the story file are left as they are."""
    return {"result": "failed", "failure_reason": failure_reason(state)}
