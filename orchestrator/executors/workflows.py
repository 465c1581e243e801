"""The Temporal workflows: an epic starts a child workflow per story, in dependency order, and
each story runs one long activity on the task queue of its host (`stories@<host>`).

Workflow code runs in Temporal's sandbox and is replayed: only the standard library and
`temporalio` here, no clock, no files, no randomness. The host of each story is chosen before
the epic starts and is part of its input, so it is fixed in the workflow's history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

EPIC_QUEUE = "bmad-epics"
ACTIVITY = "run_story"
HEARTBEAT_TIMEOUT = timedelta(seconds=15)
STORY_TIMEOUT = timedelta(days=2)
ATTEMPTS = 20  # a host down for a while: its worker retried as it comes back


def story_queue(host: str) -> str:
    """The task queue only `host`'s worker polls."""
    return f"stories@{host}"


@dataclass
class StoryJob:
    """One story's run on one host; `run_id` names its graph thread, so a retry resumes it."""

    epic: str
    run_id: str
    story: str
    host: str


@dataclass
class EpicPlan:
    """The stories of an epic, each with its host and the stories it waits for."""

    epic: str
    run_id: str
    hosts: dict[str, str]
    depends_on: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class StoryOutcome:
    """How a story's run ended (`result` as in report.json) and on which host; `report` is its
    whole account in report.json (None for a story skipped before it ran)."""

    story: str
    host: str
    result: str
    reason: str | None = None
    report: dict[str, Any] | None = None


@workflow.defn(name="bmad-story")
class StoryWorkflow:
    """One story: its activity on its host's queue; retries stay on that queue."""

    @workflow.run
    async def run(self, job: StoryJob) -> StoryOutcome:
        """The story's outcome, from its host's worker."""
        outcome: StoryOutcome = await workflow.execute_activity(
            ACTIVITY,
            job,
            task_queue=story_queue(job.host),
            start_to_close_timeout=STORY_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=10),
                maximum_attempts=ATTEMPTS,
                non_retryable_error_types=["InputError"],
            ),
            result_type=StoryOutcome,
        )
        return outcome


@workflow.defn(name="bmad-epic")
class EpicWorkflow:
    """Every story of the epic as a child workflow, each after the stories it depends on."""

    @workflow.run
    async def run(self, plan: EpicPlan) -> list[StoryOutcome]:
        """Every story's outcome, in the plan's order."""
        finished: dict[str, asyncio.Future[StoryOutcome]] = {
            story: asyncio.get_running_loop().create_future() for story in plan.hosts
        }

        async def one(story: str) -> StoryOutcome:
            for dependency in plan.depends_on.get(story, []):
                before = await finished[dependency]
                if before.result not in ("done", "already done"):
                    outcome = StoryOutcome(
                        story, plan.hosts[story], "skipped", f"{dependency} did not finish"
                    )
                    finished[story].set_result(outcome)
                    return outcome
            outcome = await workflow.execute_child_workflow(
                StoryWorkflow.run,
                StoryJob(plan.epic, plan.run_id, story, plan.hosts[story]),
                id=f"{plan.run_id}:{story}",
                task_queue=EPIC_QUEUE,
            )
            finished[story].set_result(outcome)
            return outcome

        return list(await asyncio.gather(*(one(story) for story in plan.hosts)))
