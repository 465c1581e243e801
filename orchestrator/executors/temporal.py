"""Running an epic on Temporal: the epic starter (`python -m orchestrator epic.yaml` with
`executor: temporal`) and a host's worker (`python -m orchestrator worker epic.yaml --host H`).

A worker polls `stories@H` for story activities and the shared epic queue for workflow tasks.
Its activity drives one story with the unchanged story graph, the Postgres checkpointer
(`durability="sync"`) and the story's advisory lock, on the worker's own tmux socket and
checkout; it heartbeats while the story runs. A worker that dies stops heartbeating: Temporal
retries the activity on the same host's queue, the restarted worker resumes the graph from the
checkpoint and adopts the story's live tmux session (the thread is named by the epic run, not
by the attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from orchestrator.blocking import TMUX
from orchestrator.defaults import ExitCode
from orchestrator.errors import ConfigError, InputError
from orchestrator.executors.workflows import (
    ACTIVITY,
    EPIC_QUEUE,
    HEARTBEAT_TIMEOUT,
    EpicPlan,
    EpicWorkflow,
    StoryJob,
    StoryOutcome,
    StoryWorkflow,
    story_queue,
)

if TYPE_CHECKING:
    from orchestrator.app.config import EpicConfig

HEARTBEAT_EVERY = HEARTBEAT_TIMEOUT.total_seconds() / 5
LOCKED = "another run is driving story"  # the driver's reason for a story held elsewhere


def run_to_exit(main: Coroutine[Any, Any, int]) -> NoReturn:
    """Run `main` and exit with its code (2 and the message for bad input), skipping
    interpreter finalization, which the Temporal SDK's runtime threads can crash (SIGABRT in
    `PyGILState_Release`) after everything is done and printed."""
    try:
        code = asyncio.run(main)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = ExitCode.BAD_INPUT
    except KeyboardInterrupt:  # the workflows go on on Temporal; only this process stops
        code = ExitCode.INTERRUPTED
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def epic_workflow_id(config: EpicConfig) -> str:
    """The epic's workflow id: a second start while one runs is refused by Temporal itself."""
    return f"bmad-epic:{config.epic_name()}"


def plan_epic(config: EpicConfig, run_id: str, live: list[str] | None = None) -> EpicPlan:
    """Each story's host (its `host:`, else round-robin over the `temporal.hosts` that have a
    worker polling now, `live`, or over all of them when none has) and its dependencies."""
    hosts: dict[str, str] = {}
    pool = live or config.temporal.hosts
    turn = 0  # the round-robin counts only the stories that name no host
    for index, story in enumerate(config.stories):
        host = story.host
        if host is None and pool:
            host, turn = pool[turn % len(pool)], turn + 1
        if host is None:
            raise ConfigError(
                f"stories[{index}]: no host for story {story.id!r}: give it `host:` or list "
                "`temporal.hosts`"
            )
        hosts[story.id] = host
    return EpicPlan(
        epic=config.epic_name(), run_id=run_id, hosts=hosts, depends_on=config.dependencies()
    )


async def live_hosts(client: Any, config: EpicConfig) -> list[str]:
    """The listed hosts whose worker polls its story queue now (Temporal's poller list)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    live = []
    for host in config.temporal.hosts:
        request = DescribeTaskQueueRequest(
            namespace=config.temporal.namespace,
            task_queue=TaskQueue(name=story_queue(host)),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
        answer = await client.workflow_service.describe_task_queue(request)
        if answer.pollers:
            live.append(host)
    return live


async def _client(config: EpicConfig) -> Any:
    from temporalio.client import Client

    try:
        return await Client.connect(config.temporal.address, namespace=config.temporal.namespace)
    except Exception as exc:  # RuntimeError from the core SDK: the server is not there
        raise InputError(
            f"cannot reach Temporal at {config.temporal.address} (namespace "
            f"{config.temporal.namespace}): {exc}"
        ) from None


async def start_epic(config: EpicConfig) -> int:
    """Start the epic's workflow, wait for it, print each story's end; the exit code."""
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import WorkflowAlreadyStartedError

    client = await _client(config)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    run_id = f"t{stamp}-{re.sub(r'[^A-Za-z0-9]+', '-', config.epic_name()).strip('-')}"[:80]
    plan = plan_epic(config, run_id, await live_hosts(client, config))
    try:
        handle = await client.start_workflow(
            EpicWorkflow.run, plan, id=epic_workflow_id(config), task_queue=EPIC_QUEUE
        )
    except WorkflowAlreadyStartedError:
        raise InputError(
            f"epic {config.epic_name()!r} is already running on Temporal "
            f"(workflow {epic_workflow_id(config)}); wait for it or cancel it there"
        ) from None
    hosts = sorted(set(plan.hosts.values()))
    print(f"epic {config.epic_name()} started on Temporal as run {run_id}", flush=True)
    for host in hosts:
        print(f"  host {host}: python -m orchestrator worker EPIC.yaml --host {host}", flush=True)
    try:
        outcomes: list[StoryOutcome] = await handle.result()
    except WorkflowFailureError as exc:
        print(f"the epic workflow failed: {exc.cause or exc}", flush=True)
        return ExitCode.FAILED
    for outcome in outcomes:
        reason = f": {outcome.reason}" if outcome.reason else ""
        print(f"{outcome.story}: {outcome.result} on {outcome.host}{reason}", flush=True)
    finished = all(o.result in ("done", "already done") for o in outcomes)
    code = ExitCode.OK if finished else ExitCode.FAILED
    print(f"report: {write_report(config, run_id, started, outcomes, code)}", flush=True)
    return code


def write_report(
    config: EpicConfig, run_id: str, started: datetime, outcomes: list[StoryOutcome], code: int
) -> Path:
    """The epic's report.json in the starter's state dir, each story's account from its host."""
    from orchestrator.app.runs import RunRecord, StoryReport, close_run

    record = RunRecord(
        run_id=run_id,
        epic=str(config.source),
        started_at=started,
        stories=[o.story for o in outcomes],
        epic_sha256=config.sha256,
        settings=config.model_dump(mode="json"),
    )
    reports = [
        StoryReport.model_validate(o.report)
        if o.report is not None
        else StoryReport.model_validate(
            {"story_id": o.story, "result": o.result, "reason": o.reason, "host": o.host}
        )
        for o in outcomes
    ]
    _, path = close_run(
        config.state_dir, record, reports, interrupted=False, exit_code=code,
        isolation="temporal", branch=None,
    )  # fmt: skip
    return path


class StoryActivities:
    """The activity a host's worker runs: one story, on this host's tmux and checkout."""

    def __init__(self, config: EpicConfig, host: str) -> None:
        self.config = config
        self.host = host

    async def run_story(self, job: StoryJob) -> StoryOutcome:
        """Drive the story to its end, heartbeating; a story locked elsewhere is retried."""
        from temporalio import activity

        async def beat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(HEARTBEAT_EVERY)

        beating = asyncio.create_task(beat())
        try:
            report = await self._drive(job)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if report.result == "skipped" and (report.reason or "").startswith(LOCKED):
            raise RuntimeError(report.reason)  # held by a worker still letting go: try again
        account = report.model_copy(update={"host": self.host}).model_dump(mode="json")
        return StoryOutcome(job.story, self.host, report.result, report.reason, account)

    async def _drive(self, job: StoryJob) -> Any:
        from orchestrator.app.driver import StoryDriver
        from orchestrator.app.runs import RunRecord
        from orchestrator.graphs.checkpoints import postgres_pair
        from orchestrator.graphs.story import build_story_graph

        config = self.config
        url = config.checkpointer_url()
        assert url is not None  # preflight: Temporal needs the shared checkpointer
        context = config.story_context(job.run_id, adopt=True)
        manager = await TMUX.run(context.manager)
        await manager.reap_vanished()
        record = RunRecord(
            run_id=job.run_id,
            epic=str(config.source),
            started_at=datetime.now(UTC),
            stories=[job.story],
        )

        def show(event: dict[str, Any]) -> None:
            text = " ".join(f"{k}={v}" for k, v in event.items() if k in ("event", "stage"))
            print(f"[{self.host}] {job.story}: {text}", flush=True)

        async with postgres_pair(url, config.epic_name()) as (saver, locks):
            driver = StoryDriver(
                graph=build_story_graph().compile(checkpointer=saver),
                config=config,
                context=context,
                record=record,
                worktrees=None,
                start_at=None,
                on_event=show,
                on_start=lambda story: print(f"[{self.host}] {story}: running", flush=True),
                locks=locks,
            )
            report = await driver.drive(job.story)
        await TMUX.run(manager.server.remove_idle_socket)  # tmux left with its last session
        print(f"[{self.host}] {job.story}: {report.result}", flush=True)
        return report


async def run_worker(config: EpicConfig, host: str) -> int:
    """Poll `stories@host` (and the epic queue) until SIGINT or SIGTERM."""
    from temporalio import activity
    from temporalio.worker import Worker

    from orchestrator.app.preflight import preflight

    if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,62}", host):
        raise InputError(f"--host: {host!r} is not a host name (letters, digits, . _ -)")
    if config.executor != "temporal":
        raise InputError("worker: the epic's `executor:` is not temporal")
    problems, _ = preflight(config, False)
    if problems:
        raise InputError("cannot start:\n  " + "\n  ".join(problems))
    client = await _client(config)
    activities = StoryActivities(config, host)

    @activity.defn(name=ACTIVITY)
    async def run_story(job: StoryJob) -> StoryOutcome:
        return await activities.run_story(job)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stories = Worker(client, task_queue=story_queue(host), activities=[run_story])
    epics = Worker(client, task_queue=EPIC_QUEUE, workflows=[EpicWorkflow, StoryWorkflow])
    print(f"worker {host}: polling {story_queue(host)} and {EPIC_QUEUE}", flush=True)
    async with stories, epics:
        await stop.wait()
    return 0
