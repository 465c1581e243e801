"""One story of a run through the story graph: started, continued, or resumed by an answer.

Each story is a LangGraph thread (`{run_id}:{story}`). A new thread starts where the story's file
says it stands; an existing one continues from its checkpoint. A story stopped for money goes on
with the epic's budget as it is now; a story waiting for a person (an `interrupt()`) goes on only
with an answer to that very interrupt, and otherwise reports `waiting` and frees its slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from orchestrator.app import isolation, people
from orchestrator.app.config import EpicConfig
from orchestrator.app.runs import RunRecord, StoryReport, story_report
from orchestrator.blocking import FILES
from orchestrator.git import Worktrees
from orchestrator.methods import StartAt, StoryStanding
from orchestrator.state import StoryContext, StoryState

if TYPE_CHECKING:
    from orchestrator.graphs.postgres import StoryLocks

OVER_BUDGET = "over_budget"


class StoryDriver:
    """Drives the stories of one run through a compiled story graph."""

    def __init__(
        self,
        *,
        graph: Any,
        config: EpicConfig,
        context: StoryContext,
        record: RunRecord,
        worktrees: Worktrees | None,
        start_at: StartAt | None,
        on_event: Callable[[dict[str, Any]], None],
        on_start: Callable[[str], None],
        locks: StoryLocks | None = None,
    ) -> None:
        self.locks = locks  # with a shared database: one writer per story, across hosts
        self.graph = graph
        self.config = config
        self.context = context
        self.record = record
        self.worktrees = worktrees
        self.start_at = start_at
        self.on_event = on_event
        self.on_start = on_start

    def thread(self, story: str) -> Any:
        """The story's LangGraph thread in this run."""
        return {"configurable": {"thread_id": f"{self.record.run_id}:{story}"}}

    async def seed_ledger(self, stories: list[str]) -> None:
        """A resumed run's budget counts what its stories used before."""
        ledger = self.context.ledger()
        for story in stories:
            values = (await self.graph.aget_state(self.thread(story))).values
            if values:
                for attempt in StoryState.model_validate(values).runs:
                    ledger.add(attempt.usage)

    def standing(self, story: str) -> StoryStanding:
        """Where a story starts: in its own worktree when an earlier run left one."""
        return isolation.story_standing(
            self.context.method_project,
            self.worktrees,
            story,
            self.config.project,
            start_at=self.start_at,
            check_out=True,
        )

    async def drive(self, story: str) -> StoryReport:
        """Take the story as far as it goes now; its report (`waiting` when a person must act).

        With a shared database the story's lock is held for the whole drive; a story another
        process holds is left alone and reported skipped, naming the holder.
        """
        if self.locks is None:
            return await self._drive(story)
        holder = await self.locks.try_lock(story)
        if holder is not None:
            return StoryReport(
                story_id=story,
                result="skipped",
                reason=f"another run is driving story {story} ({holder}); it was left alone",
            )
        try:
            return await self._drive(story)
        finally:
            await self.locks.unlock(story)

    async def _drive(self, story: str) -> StoryReport:
        thread = self.thread(story)
        snapshot = await self.graph.aget_state(thread)
        start: Any = None  # None: continue the thread's checkpoint
        if snapshot.interrupts:
            interrupt = snapshot.interrupts[0]
            answer = people.take_answer(
                self.config.state_dir, self.record.run_id, story, interrupt.id
            )
            if answer is None:
                return self._waiting(story, snapshot)
            people.clear_waiting(self.config.state_dir, story)
            start = Command(resume=answer.resume_value())
        elif snapshot.values and not snapshot.next and snapshot.values.get("result") == OVER_BUDGET:
            # Stopped for money: go on from the stage it stopped after, with today's budget.
            stopped = StoryState.model_validate(snapshot.values)
            reset = {"policy": self.config.story_policy(), "result": None, "budget_stop": None}
            await self.graph.aupdate_state(
                thread, {**reset, "failure_reason": None}, as_node=stopped.stage
            )
            snapshot = await self.graph.aget_state(thread)
        elif not snapshot.values:
            standing = await FILES.run(self.standing, story)
            if standing.start is None:
                return StoryReport(
                    story_id=story,
                    result="skipped",
                    reason=standing.reason,
                    story_file=standing.file,
                    status_raw=standing.status_raw,
                )
            if standing.start == "done":
                return StoryReport(story_id=story, result="already done", story_file=standing.file)
            start = {
                "story_id": story,
                "start_at": standing.start,
                "policy": self.config.story_policy(),
            }
        # `next` leaves out a step whose writes were saved but not its checkpoint (a crash, a
        # full disk between the two): its tasks still show, and the stream goes on from them.
        if start is not None or snapshot.next or snapshot.tasks:
            self.on_start(story)
            async for chunk in self.graph.astream(  # type: ignore[call-overload]
                start,
                thread,
                context=self.context,
                durability="sync",
                stream_mode="custom",
            ):
                if isinstance(chunk, dict) and "event" in chunk:
                    self.on_event(chunk)
        snapshot = await self.graph.aget_state(thread)
        if snapshot.interrupts:
            return self._waiting(story, snapshot)
        people.clear_waiting(self.config.state_dir, story)  # an older run's question is moot
        return story_report(StoryState.model_validate(snapshot.values))

    async def interrupted(self, story: str, deadline: float) -> StoryReport:
        """The story's account as its checkpoint holds it, for a run that was interrupted: the
        stages it finished count, though it did not end (bare, if it cannot be read in time)."""
        bare = StoryReport(story_id=story, result="interrupted")
        try:
            async with asyncio.timeout(deadline):
                snapshot = await self.graph.aget_state(self.thread(story))
        except Exception:
            return bare
        if not snapshot.values:
            return bare
        report = story_report(StoryState.model_validate(snapshot.values))
        return report.model_copy(update={"result": "interrupted", "reason": None})

    def _waiting(self, story: str, snapshot: Any) -> StoryReport:
        """The story waits for a person: the question kept where `approve` & co. find it."""
        interrupt = snapshot.interrupts[0]
        asked = people.waiting_payload(interrupt.value)
        previous = people.load_waiting(self.config.state_dir, story)
        waiting = people.Waiting(
            run_id=self.record.run_id,
            epic=str(self.config.source),
            story=story,
            gate=asked.get("gate", "on_needs_input"),
            stage=asked.get("stage"),
            question=str(asked.get("question", "")),
            interrupt_id=interrupt.id,
            rehearsal=self.record.simulate,
            asked_at=previous.asked_at
            if previous is not None and previous.interrupt_id == interrupt.id
            else people.now(),
        )
        people.save_waiting(self.config.state_dir, waiting)
        report = story_report(StoryState.model_validate(snapshot.values))
        return report.model_copy(
            update={
                "result": "waiting",
                "reason": f"waiting for a person ({waiting.gate}): {waiting.question}",
                "waiting": {**waiting.model_dump(mode="json"), "answer": waiting.commands()},
            }
        )
