"""Where a story goes after each stage: pure functions of the state.

Every bound (attempts, PO revisions, QA fix rounds) lives in `state.policy`, so these functions
need nothing else and the `Literal` return types let LangGraph draw every edge.
"""

from __future__ import annotations

import shlex
from typing import Literal

from orchestrator.stages import StartAt
from orchestrator.state import StoryState


def qa_failed(state: StoryState) -> bool:
    """True when the last QA gate sends the story back to Dev (CONCERNS by policy)."""
    gate = state.outcomes.get("qa")
    return gate == "FAIL" or (gate == "CONCERNS" and state.policy.concerns == "fail")


def _retry(state: StoryState) -> bool:
    """The last attempt failed; may the stage try again with a fresh session?"""
    stage = state.stage or "sm"
    return state.failed_attempts < state.policy.attempts_allowed(stage)


def asks_person(state: StoryState) -> bool:
    """The last attempt ended `needs_input` and the epic has a person answer such questions."""
    if "on_needs_input" not in state.policy.gates or state.outcome is not None:
        return False
    last = state.recovery_log[-1] if state.recovery_log else None
    return last is not None and last.stage == state.stage and last.problem == "needs_input"


def person_asked_for(state: StoryState, gate: str) -> bool:
    """A person rejected the story at `gate`: a revision (after_po) or fix round (after_qa)."""
    return state.gate == gate and state.gate_action == "reject"


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


def route_after_sm(
    state: StoryState,
) -> Literal["sm", "po", "dev", "gate", "failed", "over_budget"]:
    """The draft goes to the PO; a method without a PO (BMad v6) goes on to Dev as after a GO.
    A failed attempt is retried or fails the story."""
    if budget_exceeded(state):
        return "over_budget"
    if asks_person(state):
        return "gate"
    if state.outcome is None:
        return "sm" if _retry(state) else "failed"
    if "po" not in state.policy.stages:
        return "gate" if "after_po" in state.policy.gates else "dev"
    return "po"


def route_after_po(
    state: StoryState,
) -> Literal["po", "sm", "dev", "gate", "failed", "over_budget"]:
    """GO goes to Dev (through a person at `after_po`), NO-GO back to SM for a revision."""
    if budget_exceeded(state):
        return "over_budget"
    if asks_person(state):
        return "gate"
    if state.outcome is None:
        return "po" if _retry(state) else "failed"
    if state.outcome == "approved":
        return "gate" if "after_po" in state.policy.gates else "dev"
    return "sm" if state.po_revisions < state.policy.max_revisions else "failed"


def route_after_dev(
    state: StoryState,
) -> Literal["dev", "qa", "gate", "integrate", "failed", "over_budget"]:
    """Implemented goes to QA; complete (reviewed already, as build-auto does) goes on as after a
    passing QA; Blocked fails the story."""
    if state.outcome == "complete" and not state.budget_stop:
        return "gate" if "after_qa" in state.policy.gates else "integrate"
    if budget_exceeded(state):
        return "over_budget"
    if asks_person(state):
        return "gate"
    if state.outcome is None:
        return "dev" if _retry(state) else "failed"
    return "qa" if state.outcome == "implemented" else "failed"


def route_after_qa(
    state: StoryState,
) -> Literal["qa", "dev", "integrate", "gate", "failed", "over_budget"]:
    """A passing gate goes on to integrate (through a person at `after_qa`; merging costs
    nothing, so a budget does not stop it); a failing one back to Dev."""
    if state.outcome == "blocked":
        return "failed"
    if state.outcome is not None and not qa_failed(state) and not state.budget_stop:
        return "gate" if "after_qa" in state.policy.gates else "integrate"
    if budget_exceeded(state):
        return "over_budget"
    if asks_person(state):
        return "gate"
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


def route_after_gate(
    state: StoryState,
) -> Literal["sm", "po", "dev", "qa", "integrate", "failed"]:
    """Where a person's answer sends the story."""
    if state.gate == "after_po":
        return "sm" if state.gate_action == "reject" else "dev"
    if state.gate == "after_qa":
        return "dev" if state.gate_action == "reject" else "integrate"
    if state.gate_action == "reject":
        return "failed"
    return state.stage if state.stage in ("sm", "po", "dev", "qa") else "sm"  # type: ignore[return-value]


def failure_reason(state: StoryState) -> str:
    """A sentence a user can act on, derived from how the story got to `failed`."""
    stage = state.stage or "sm"
    if state.gate == "on_needs_input" and state.gate_action == "reject":
        note = f": {state.person_note}" if state.person_note else ""
        return f"a person stopped the story when its {stage} agent asked a question{note}"
    if state.outcome is None:
        last = next((e for e in reversed(state.recovery_log) if e.stage == stage), None)
        detail = f": {last.detail}" if last else ""
        return f"{stage} failed {state.failed_attempts} attempt(s){detail}"
    if stage == "po":
        return (
            f"PO rejected the story (NO-GO) after {state.po_revisions} revision(s); "
            f"max_revisions is {state.policy.max_revisions}"
        )
    said = state.runs[-1].detail if state.runs and state.runs[-1].stage == stage else ""
    said = "" if said.strip().lower() == "blocked" else said  # v4 says only its Status
    if stage == "dev":
        return f"Dev reported the story Blocked{f' ({said})' if said else ''}"
    if stage == "qa" and state.outcome == "blocked":
        return f"QA's review pass ended blocked{f' ({said})' if said else ''}"
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
        f"to finish by hand, run `{shlex.join(['git', '-C', where, 'merge', into])}`, resolve, "
        f"`git commit`, then `git merge --no-ff {shlex.quote(state.branch or '')}` on {into}"
    )
