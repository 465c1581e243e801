"""The two ends of the story graph."""

from __future__ import annotations

from typing import Any

from orchestrator.nodes.routing import budget_exceeded, failure_reason
from orchestrator.state import StoryState


async def done_node(state: StoryState) -> dict[str, Any]:
    """The story is Done (and, in a worktree, merged): nothing is left to do."""
    return {"result": "done", "failure_reason": None}


async def failed_node(state: StoryState) -> dict[str, Any]:
    """Record why the story stopped; logs, files and branches are left as they are."""
    merge_conflict = state.stage == "integrate" and state.outcome == "conflict"
    return {
        "result": "merge_conflict" if merge_conflict else "failed",
        "failure_reason": failure_reason(state),
    }


async def over_budget_node(state: StoryState) -> dict[str, Any]:
    """The story's (or the run's) budget is spent: stop, resumable once it is raised."""
    reason = budget_exceeded(state) or "budget reached"
    return {
        "result": "over_budget",
        "failure_reason": f"{reason}; raise the budget in epic.yaml, then run with --resume "
        "--accept-changes to go on",
    }
