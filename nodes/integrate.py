"""The `integrate` node: QA passed, so the story is Done and its work joins the others'.

Under `isolation: shared` it only makes the method's last move (Status Done). Under `worktree`
it also commits the story's branch and merges it into the integration branch, one story at a
time; a conflict is aborted and sent to a Dev round in the story's worktree.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from orchestrator.blocking import FILES, GIT
from orchestrator.errors import OrchestratorError
from orchestrator.git import commit, describe_commit, merge_story
from orchestrator.nodes.events import emit
from orchestrator.state import RecoveryEntry, StoryContext, StoryState


async def integrate_node(state: StoryState, runtime: Runtime[StoryContext]) -> dict[str, Any]:
    """Status Done; in a worktree, commit and merge into the integration branch."""
    context = runtime.context or StoryContext()
    started = time.monotonic()
    worktrees = await GIT.run(context.worktrees)
    update: dict[str, Any] = {"stage": "integrate"}
    try:
        workspace = None
        if worktrees is not None:
            workspace = await GIT.run(worktrees.story, state.story_id)
        root = workspace.project if workspace is not None else None
        project = await FILES.run(context.method_project, root)
        story_file = await FILES.run(project.story_file, state.story_id)
        if story_file is None and state.story_file:
            story_file = Path(state.story_file)
        if story_file is not None:
            await FILES.run(project.finish_story, story_file)
        if worktrees is None or workspace is None:
            outcome = "shared"
        else:
            update |= {"workdir": str(workspace.project), "branch": workspace.branch}
            story = state.story_id
            made = await GIT.run(commit, worktrees, workspace, f"bmad({story}): done")
            if made is not None:
                update["commits"] = [await GIT.run(describe_commit, worktrees, made)]
            message = f"bmad: merge story {story} ({workspace.branch})"
            merged = await GIT.run(merge_story, worktrees, workspace, message)
            if merged.merged:
                outcome = "merged"
                update["merge_commit"] = merged.commit
                await GIT.run(worktrees.remove, workspace, delete_branch=True)
            else:
                outcome = "conflict"
                update["merge_conflicts"] = list(merged.conflicts)
    except OrchestratorError as exc:  # git failed: recorded, retried or failed by routing
        failed = state.failed_attempts + 1
        give_up = failed >= state.policy.attempts_allowed("integrate")
        entry = RecoveryEntry(
            at=datetime.now(UTC),
            stage="integrate",
            attempt=failed,
            problem="error",
            detail=str(exc),
            action="give up" if give_up else "retry",
        )
        emit(runtime, event="merge", story=state.story_id, outcome="error", detail=str(exc))
        return {
            **update,
            "outcome": None,
            "failed_attempts": failed,
            "timings": {"integrate": round(time.monotonic() - started, 3)},
            "recovery_log": [entry],
        }
    emit(
        runtime,
        event="merge",
        story=state.story_id,
        outcome=outcome,
        branch=update.get("branch"),
        conflicts=update.get("merge_conflicts", []),
    )
    return {
        **update,
        "outcome": outcome,
        "outcomes": {"integrate": outcome},
        "failed_attempts": 0,
        "timings": {"integrate": round(time.monotonic() - started, 3)},
    }
