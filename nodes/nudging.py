"""Telling a stopped (or asking) agent what is missing, for one stage attempt.

The wait (`orchestrator.watch`) calls the attempt's `Nudger` when the agent's turn ends, or it
asks, before the stage's output is there. The text is the method's nudge; it reaches the agent
through its CLI's waiting hook where it has one, else typed (`TmuxAgentManager.steer`). Each
nudge is recorded on the attempt; a question goes to a person instead when the epic says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator.agents.profiles import AgentProfile
from orchestrator.agents.steering import answered
from orchestrator.blocking import FILES
from orchestrator.errors import OrchestratorError
from orchestrator.state import NudgeRecord
from orchestrator.tmux import AgentSession, TmuxAgentManager
from orchestrator.watch import NudgeReason

# What an agent that asks a question is told: nobody is there to answer.
UNATTENDED_ANSWER = (
    "Nobody can answer questions in this unattended run: decide yourself, note the assumption "
    "where your stage's output records decisions, and go on."
)
# What an agent that asks is told when a person answers such questions (gates: on_needs_input).
PERSON_ANSWERS_LATER = (
    "A person will answer this question; this session ends now. Stop: end your turn without "
    "doing anything else."
)


@dataclass
class Nudger:
    """The nudges of one attempt: at most `limit`, each recorded in `nudges`."""

    manager: TmuxAgentManager
    profile: AgentProfile
    text: str  # the method's nudge for this stage
    limit: int
    output_ready: Callable[[], object]  # the stage's check: not None once the output is valid
    person_answers: bool  # gates: on_needs_input
    on_nudge: Callable[[NudgeReason, int], None] = lambda reason, count: None
    session: AgentSession | None = None
    nudges: list[NudgeRecord] = field(default_factory=list)
    asked: list[str | None] = field(default_factory=list)  # questions kept for a person

    async def __call__(self, reason: NudgeReason) -> bool:
        """Whether the agent was told and goes on; False ends the attempt as `needs_input`.

        A nudge that cannot be delivered ends the attempt too, unless the output became valid
        meanwhile (then the wait finds it)."""
        session, manager = self.session, self.manager
        assert session is not None
        question = reason == "attention"
        if question and self.person_answers:
            told = await manager.defer_question(session, PERSON_ANSWERS_LATER, self.profile)
            self.asked.append(told)
            return False
        if not question and await FILES.run(answered, session.turn_end_file):
            return True  # a turn end whose hook took an answer already: the agent goes on
        if len(self.nudges) >= self.limit:
            return False
        text = f"{UNATTENDED_ANSWER} {self.text}" if question else self.text
        now = datetime.now(UTC)
        try:
            via = await manager.steer(session, text, self.profile, question=question)
        except OrchestratorError as exc:
            self.nudges.append(NudgeRecord(at=now, reason=reason, text=text, error=str(exc)))
            manager.events.write("nudge-error", session=session.name, error=str(exc))
            return await FILES.run(self.output_ready) is not None
        self.nudges.append(NudgeRecord(at=now, reason=reason, text=text, via=via))
        count = len(self.nudges)
        manager.events.write("nudge", session=session.name, reason=reason, count=count, via=via)
        self.on_nudge(reason, count)
        return True

    def question_detail(self) -> str | None:
        """The attempt's detail when it ended on a question kept for a person."""
        if not self.asked:
            return None
        said = self.asked[-1] or "(its words did not reach the orchestrator: see the screen)"
        return f"the agent asked: {said}"
