"""The `gate` node: the story waits for a person, as a LangGraph `interrupt()`.

The question is the interrupt's value, so the story's checkpoint holds it, Studio shows the
pause, and `Command(resume=answer)` continues from this exact point. The answer (approve,
reject with a note, or reply with text) is recorded with who gave it and when; routing reads
what it asks for (`route_after_gate`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from langgraph.types import interrupt
from pydantic import BaseModel

from orchestrator.nodes.routing import asks_person
from orchestrator.stages import GateName
from orchestrator.state import GateRecord, StoryState


class Answer(BaseModel):
    """What a person answered (the resume value)."""

    action: Literal["approve", "reject", "reply"]
    note: str | None = None
    by: str = ""
    at: datetime | None = None
    asked_at: datetime | None = None


def pending_gate(state: StoryState) -> GateName:
    """Which gate the story stands at."""
    if asks_person(state):
        return "on_needs_input"
    return "after_po" if state.stage == "po" else "after_qa"


def question(state: StoryState, gate: GateName) -> str:
    """What the person is asked, in a sentence or two they can act on."""
    story = state.story_id
    if gate == "after_po":
        report = f" (report: {state.po_report})" if state.po_report else ""
        return (
            f"The PO approved story {story}{report}. Approve to start Dev, or reject with a "
            "note to send it back to the SM for a revision."
        )
    if gate == "after_qa":
        return (
            f"QA passed story {story} with gate {state.outcome}. Approve to finish it (Done, and "
            "merged under worktree isolation), or reject with a note for a Dev fix round."
        )
    last = state.recovery_log[-1] if state.recovery_log else None
    screen = "\n".join(line for line in (last.last_screen if last else []) if line.strip())
    if last is not None and last.detail.startswith("the agent asked: "):
        screen = f"{last.detail}\n{screen}".strip()  # its words, from its CLI's hook
    asked = f"\n{screen}" if screen else ""
    return (
        f"The {state.stage} agent of story {story} stopped to ask something nobody in the run "
        f"could answer. Reply with an answer for a fresh attempt, or reject to stop the "
        f"story.{asked}"
    )


async def gate_node(state: StoryState) -> dict[str, Any]:
    """Ask a person (the story pauses here), then record the answer for routing."""
    gate = pending_gate(state)
    text = question(state, gate)
    asked = {"gate": gate, "story": state.story_id, "stage": state.stage, "question": text}
    answer = Answer.model_validate(interrupt(asked))
    if answer.action == "reply" and gate != "on_needs_input":
        raise ValueError(f"a reply answers on_needs_input, not {gate}: approve or reject")
    now = datetime.now(UTC)
    record = GateRecord(
        gate=gate,
        stage=state.stage if state.stage in ("sm", "po", "dev", "qa") else None,  # type: ignore[arg-type]
        question=text,
        asked_at=answer.asked_at or now,
        action=answer.action,
        note=answer.note,
        by=answer.by,
        answered_at=answer.at or now,
    )
    update: dict[str, Any] = {
        "gate": gate,
        "gate_action": answer.action,
        "person_note": answer.note,
        "gates_log": [record],
    }
    if gate == "on_needs_input" and answer.action != "reject":
        update["failed_attempts"] = 0  # a person answered: the stage gets a fresh attempt
    return update
