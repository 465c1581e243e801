"""Stories waiting for a person, and the answers people give (approve, reject, reply).

A story waits inside its LangGraph checkpoint (an `interrupt()`); these files are what the rest of
the world reads: `{state_dir}/waiting/{story}.json` holds the question and how to answer it, and
`approve`/`reject`/`reply` leave `{state_dir}/answers/{run}/{story}.json`, naming the interrupt
it answers, for the run that resumes the story. An answer to an older question is never used.

A question belongs to the run that asked it, since only that run, resumed, can take its answer.
It goes stale once another run of the epic is the one `--resume` would continue, or a newer run
took the story on (that run started from the story's file, so the old checkpoint no longer says
where the story stands): a stale question is never shown as waiting, and never answered.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from orchestrator.app.runs import RunRecord, load_records
from orchestrator.errors import InputError
from orchestrator.files import StateDir, read_private, write_private
from orchestrator.stages import GateName

if TYPE_CHECKING:
    from orchestrator.app.config import EpicConfig

WAITING_DIR = "waiting"
ANSWERS_DIR = "answers"
Action = Literal["approve", "reject", "reply"]


class Waiting(BaseModel):
    """A story waiting for a person: where, why, and which interrupt an answer resumes."""

    run_id: str
    epic: str
    story: str
    gate: GateName
    stage: str | None
    question: str
    interrupt_id: str
    asked_at: datetime
    rehearsal: bool = False  # asked in a rehearsal (`--simulate`): answered with `--simulate`

    def commands(self) -> list[str]:
        """How to answer, as commands a person can paste."""
        base = f"python -m orchestrator {{}} {shlex.quote(self.epic)} {shlex.quote(self.story)}"
        base += " --simulate" * self.rehearsal
        if self.gate == "on_needs_input":
            return [base.format("reply") + " 'YOUR ANSWER'", base.format("reject") + " --note WHY"]
        return [base.format("approve"), base.format("reject") + " --note 'WHAT TO CHANGE'"]


class Answer(BaseModel):
    """A person's answer to one interrupt."""

    interrupt_id: str
    action: Action
    note: str | None = None
    by: str
    at: datetime
    asked_at: datetime

    def resume_value(self) -> dict[str, Any]:
        """What `Command(resume=...)` hands the gate node."""
        return self.model_dump(mode="json", include={"action", "note", "by", "at", "asked_at"})


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def _waiting_file(state_dir: Path, story: str) -> Path:
    return state_dir / WAITING_DIR / f"{story}.json"


def _answer_file(state_dir: Path, run_id: str, story: str) -> Path:
    return state_dir / ANSWERS_DIR / run_id / f"{story}.json"


def save_waiting(state_dir: Path, waiting: Waiting) -> None:
    """Record that a story waits (owner-only)."""
    path = StateDir(state_dir).file(_waiting_file(state_dir, waiting.story))
    write_private(path, waiting.model_dump_json(indent=2))


def load_waiting(state_dir: Path, story: str) -> Waiting | None:
    """The story's open question, if it waits."""
    try:
        return Waiting.model_validate_json(read_private(_waiting_file(state_dir, story)))
    except (OSError, ValueError, ValidationError):
        return None


def clear_waiting(state_dir: Path, story: str) -> None:
    """The story no longer waits."""
    _waiting_file(state_dir, story).unlink(missing_ok=True)


def stale_reason(waiting: Waiting, epic: str, records: list[RunRecord]) -> str | None:
    """Why the question can no longer be answered (in words), or None while its run can take
    the answer. `records` are the state dir's runs (`load_records`)."""
    run = waiting.run_id
    if waiting.epic != epic:
        return f"it was asked by a run of another epic ({waiting.epic})"
    mine = sorted((r for r in records if r.epic == epic), key=lambda r: r.started_at)
    asked_in = next((r for r in mine if r.run_id == run), None)
    if asked_in is None:
        return f"run {run} that asked it is not among this epic's runs"
    if asked_in.abandoned is not None:
        return f"run {run} that asked it cannot be resumed ({asked_in.abandoned})"
    if asked_in.finished:
        return f"run {run} that asked it has finished"
    newer = mine[mine.index(asked_in) + 1 :]
    if took := [r.run_id for r in newer if waiting.story in r.stories]:
        return f"it was asked by run {run}, and run {took[-1]} has run story {waiting.story} since"
    if later := [r.run_id for r in newer if not r.finished and r.abandoned is None]:
        return f"it was asked by run {run}, and run {later[-1]} is the epic's unfinished run now"
    return None


def open_questions(state_dir: Path, epic: str, stories: list[str]) -> dict[str, Waiting | None]:
    """Each story's question if it waits for a person now (None too for a stale one)."""
    records = load_records(state_dir)
    asked = {story: load_waiting(state_dir, story) for story in stories}
    return {
        story: None if waiting is None or stale_reason(waiting, epic, records) else waiting
        for story, waiting in asked.items()
    }


def make_answer(waiting: Waiting, action: Action, note: str | None) -> Answer:
    """A person's answer, validated against the gate it answers (raises ValueError)."""
    if action == "reply" and waiting.gate != "on_needs_input":
        raise ValueError(
            f"story {waiting.story} waits at {waiting.gate}: approve or reject it (reply answers "
            "an agent's question)"
        )
    if action == "reject" and not note:
        raise ValueError("reject needs --note saying what to change (or why to stop)")
    return Answer(
        interrupt_id=waiting.interrupt_id,
        action=action,
        note=note or None,
        by=getpass.getuser(),
        at=datetime.now(UTC),
        asked_at=waiting.asked_at,
    )


def save_answer(state_dir: Path, waiting: Waiting, answer: Answer) -> Path:
    """Leave the answer for the run that resumes the story."""
    path = StateDir(state_dir).file(_answer_file(state_dir, waiting.run_id, waiting.story))
    write_private(path, answer.model_dump_json(indent=2))
    return path


def answers_folder(state_dir: Path, run_id: str) -> Path:
    """Where a run's answers arrive (made when missing)."""
    return StateDir(state_dir).folder(Path(ANSWERS_DIR) / run_id)


def has_answer(state_dir: Path, run_id: str, story: str) -> bool:
    """Whether an answer for the story has arrived."""
    return _answer_file(state_dir, run_id, story).is_file()


def take_answer(state_dir: Path, run_id: str, story: str, interrupt_id: str) -> Answer | None:
    """The answer to this interrupt, removed once taken; an answer to another one is dropped."""
    path = _answer_file(state_dir, run_id, story)
    try:
        answer = Answer.model_validate_json(read_private(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ValidationError):
        answer = None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if answer is None or answer.interrupt_id != interrupt_id:
        return None
    return answer


def waiting_payload(value: Any) -> dict[str, Any]:
    """The question an interrupt carries, as a mapping (whatever shape it arrived in)."""
    if isinstance(value, dict):
        return value
    with contextlib.suppress(TypeError, ValueError):
        loaded = json.loads(value)
        if isinstance(loaded, dict):
            return loaded
    return {"question": str(value)}


def give_answer(
    config: EpicConfig, story: str, action: Action, note: str | None
) -> tuple[str, str | None]:
    """Record a person's answer: (what to tell them, the run to resume now, or None when a live
    run resumes the story itself). Raises `InputError` when the story does not wait, or the
    answer does not fit its gate."""
    from orchestrator.app.runlock import live_holder

    waiting = load_waiting(config.state_dir, story)
    if waiting is None:
        raise InputError(
            f"story {story} is not waiting for a person (`status {config.source}` shows which are)"
        )
    if why := stale_reason(waiting, str(config.source), load_records(config.state_dir)):
        raise InputError(
            f"story {story}'s question ({waiting.gate}, asked {waiting.asked_at:%Y-%m-%d %H:%M} "
            f"UTC) is stale: {why}; nothing was recorded (`status {config.source}` shows what "
            "waits now)"
        )
    try:
        answer = make_answer(waiting, action, note)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    save_answer(config.state_dir, waiting, answer)
    said = f"{action} recorded for story {story} ({waiting.gate}) by {answer.by}"
    holder = live_holder(config.state_dir)
    if holder is None:
        return said, waiting.run_id
    if holder.run_id == waiting.run_id:
        return f"{said}; run {holder.run_id} resumes the story when a slot is free", None
    return f"{said}; {holder.describe()} is running: --resume after it ends", None
