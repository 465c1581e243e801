"""Where a story goes after each stage: pure functions of the state.

Every bound (attempts, PO revisions, QA fix rounds) lives in `state.policy`, so these functions
need nothing else and the `Literal` return types let LangGraph draw every edge.
"""

from __future__ import annotations

from typing import Literal

from orchestrator.stages import StartAt
from state import StoryState


def qa_failed(state: StoryState) -> bool:
    """True when the last QA gate sends the story back to Dev (CONCERNS by policy)."""
    gate = state.outcomes.get("qa")
    return gate == "FAIL" or (gate == "CONCERNS" and state.policy.concerns == "fail")


def _retry(state: StoryState) -> bool:
    """The last attempt failed; may the stage try again with a fresh session?"""
    stage = state.stage or "sm"
    return state.failed_attempts < state.policy.attempts_allowed(stage)


def route_start(state: StoryState) -> StartAt:
    """Stories adopted mid-epic start where their file says they are."""
    return state.start_at


def budget_exceeded(state: StoryState) -> str | None:
    """Why the story must stop for money (its own budget, or the run's), or None."""
    if state.budget_stop:
        return state.budget_stop
    budget = state.policy.budget
    reason = budget.exceeded_by(state.usage) if budget is not None else None
    return f"story budget reached: {reason}" if reason else None


def route_after_sm(state: StoryState) -> Literal["sm", "po", "failed", "over_budget"]:
    """The draft goes to the PO; a failed attempt is retried or fails the story."""
    if budget_exceeded(state):
        return "over_budget"
    if state.outcome is None:
        return "sm" if _retry(state) else "failed"
    return "po"


def route_after_po(state: StoryState) -> Literal["po", "sm", "dev", "failed", "over_budget"]:
    """GO goes to Dev, NO-GO back to SM for a revision (within bounds)."""
    if budget_exceeded(state):
        return "over_budget"
    if state.outcome is None:
        return "po" if _retry(state) else "failed"
    if state.outcome == "approved":
        return "dev"
    return "sm" if state.po_revisions < state.policy.max_revisions else "failed"


def route_after_dev(state: StoryState) -> Literal["dev", "qa", "failed", "over_budget"]:
    """Implemented goes to QA; Blocked fails the story."""
    if budget_exceeded(state):
        return "over_budget"
    if state.outcome is None:
        return "dev" if _retry(state) else "failed"
    return "qa" if state.outcome == "implemented" else "failed"


def route_after_qa(
    state: StoryState,
) -> Literal["qa", "dev", "integrate", "failed", "over_budget"]:
    """A passing gate goes on to integrate (which costs nothing); a failing one back to Dev."""
    if state.outcome is not None and not qa_failed(state) and not state.budget_stop:
        return "integrate"
    if budget_exceeded(state):
        return "over_budget"
    if state.outcome is None:
        return "qa" if _retry(state) else "failed"
    return "dev" if state.qa_fix_rounds < state.policy.max_fix_rounds else "failed"


def resolving_merge(state: StoryState) -> bool:
    """True when Dev's next round resolves a conflict with the integration branch."""
    return state.outcomes.get("integrate") == "conflict"


def route_after_integrate(
    state: StoryState,
) -> Literal["integrate", "dev", "done", "failed", "over_budget"]:
    """Merged is Done; a conflict goes to a Dev round that resolves it (within bounds)."""
    if state.outcome is None:
        return "integrate" if _retry(state) else "failed"
    if state.outcome != "conflict":
        return "done"
    if state.merge_rounds >= state.policy.max_merge_rounds:
        return "failed"
    return "over_budget" if budget_exceeded(state) else "dev"


def failure_reason(state: StoryState) -> str:
    """A sentence a user can act on, derived from how the story got to `failed`."""
    stage = state.stage or "sm"
    if state.outcome is None:
        last = next((e for e in reversed(state.recovery_log) if e.stage == stage), None)
        detail = f": {last.detail}" if last else ""
        return f"{stage} failed {state.failed_attempts} attempt(s){detail}"
    if stage == "po":
        return (
            f"PO rejected the story (NO-GO) after {state.po_revisions} revision(s); "
            f"max_revisions is {state.policy.max_revisions}"
        )
    if stage == "dev":
        return "Dev reported the story Blocked"
    if stage == "qa":
        return (
            f"QA gate {state.outcome} after {state.qa_fix_rounds} fix round(s); "
            f"max_fix_rounds is {state.policy.max_fix_rounds}"
        )
    if stage == "integrate":
        return merge_conflict_reason(state)
    return f"{stage} ended with outcome {state.outcome!r}"


def merge_conflict_reason(state: StoryState) -> str:
    """What conflicted, what is kept, and how to finish the merge by hand."""
    files = ", ".join(state.merge_conflicts) or "(git named no file)"
    into = state.branch.rpartition("--")[0] if state.branch else "the integration branch"
    where = state.workdir or "the story's worktree"
    return (
        f"merging {state.branch} into {into} conflicts in {files} after "
        f"{state.merge_rounds} resolve round(s); max_merge_rounds is "
        f"{state.policy.max_merge_rounds}. Branch {state.branch} and its worktree are kept: "
        f"to finish by hand, in {where} run `git merge {into}`, resolve, `git commit`, then "
        f"`git merge --no-ff {state.branch}` on {into}"
    )
