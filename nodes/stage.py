"""The one mechanism behind the sm, po, dev and qa nodes.

A stage attempt: spawn the stage's agent session, wait for the stage's output file, kill the
session whatever happened, and return a partial state update. A failed attempt (agent gone,
timeout, stall, error) is recorded in the recovery log and routed back to the same stage or to
`failed` by the routing functions; it is not raised, so the record reaches the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from nodes.routing import qa_failed
from orchestrator.bmad import BmadPaths
from orchestrator.context import StoryContext
from orchestrator.sessions import AgentSession, TmuxAgentManager
from orchestrator.waiting import NudgeReason, WaitResult, filesystem_now, wait_for_output
from state import AttemptRecord, NudgeRecord, RecoveryEntry, StageName, StoryState

StageNode = Callable[[StoryState, Runtime[StoryContext]], Awaitable[dict[str, Any]]]


def make_stage_node(stage: StageName) -> StageNode:
    """A LangGraph node running `stage` for the story in the state."""

    async def node(state: StoryState, runtime: Runtime[StoryContext]) -> dict[str, Any]:
        return await run_stage(stage, state, runtime.context or StoryContext(), runtime)

    node.__name__ = f"{stage}_node"
    node.__doc__ = f"Run the BMad {stage.upper()} agent for the story in a fresh tmux session."
    return node


def _emit(runtime: Runtime[StoryContext] | None, **event: Any) -> None:
    if runtime is not None and runtime.stream_writer is not None:
        with contextlib.suppress(Exception):
            runtime.stream_writer(event)


async def run_stage(
    stage: StageName,
    state: StoryState,
    context: StoryContext,
    runtime: Runtime[StoryContext] | None = None,
) -> dict[str, Any]:
    from orchestrator.bmad import Status, find_story_file, set_status
    from orchestrator.stages import (
        Stage,
        StageBaseline,
        StageRequest,
        check_stage_output,
        default_prompt,
        nudge_prompt,
        render_prompt,
        take_baseline,
        watch_dirs,
    )

    manager: TmuxAgentManager = await asyncio.to_thread(context.manager)
    paths = await asyncio.to_thread(context.paths)
    settings = context.stage(stage)
    agent = context.agent_for(stage)
    profile = agent.build()
    revision = stage == "sm" and state.outcomes.get("po") == "rejected"
    fix_round = stage == "dev" and qa_failed(state)
    story_file = Path(state.story_file) if state.story_file else None
    if story_file is None:
        story_file = await asyncio.to_thread(find_story_file, paths.stories, state.story_id)
    if fix_round and story_file is not None:
        # BMad: a FAIL gate returns the story to InProgress. The orchestrator owns that move, so
        # a stale "Ready for Review" from the last round cannot complete this one.
        await asyncio.to_thread(set_status, story_file, Status.IN_PROGRESS.value)
    request = StageRequest(
        Stage(stage),
        state.story_id,
        story_file,
        revision,
        fix_round,
        po_report=Path(state.po_report) if revision and state.po_report else None,
        po_conditional=state.policy.po_conditional,
    )
    prompt = (
        render_prompt(settings.prompt, request, paths)
        if settings.prompt
        else default_prompt(request, paths)
    )
    attempt = state.attempts.get(stage, 0) + 1
    since = await asyncio.to_thread(lambda: filesystem_now(manager.state.folder("run")))
    baseline = await asyncio.to_thread(take_baseline, request, paths)
    started = datetime.now(UTC)
    session: AgentSession | None = None
    ready_task: asyncio.Task[bool] | None = None
    result: WaitResult[Any]
    nudges: list[NudgeRecord] = []

    async def nudge(reason: NudgeReason) -> bool:
        """Type the stage's nudge into the session, while nudges are left for this attempt."""
        assert session is not None
        if len(nudges) >= agent.nudges:
            return False
        if reason == "attention":
            for key in profile.dismiss_keys:  # close the question so the input line shows
                await manager.send_keys(session.name, key, literal=False)
        text = nudge_prompt(request, paths)
        await manager.deliver(session, text, profile)
        nudges.append(NudgeRecord(at=datetime.now(UTC), reason=reason, text=text))
        manager.events.write("nudge", session=session.name, reason=reason, count=len(nudges))
        _emit(
            runtime,
            event="nudge",
            story=state.story_id,
            stage=stage,
            attempt=attempt,
            reason=reason,
            count=len(nudges),
        )
        return True

    try:
        session = await manager.spawn(
            stage,
            state.story_id,
            profile=profile,
            prompt=prompt,
            attempt=attempt,
            story_file=story_file,
            adopt=context.adopt_live_sessions,
            meta={"since_ns": since, "baseline": dataclasses.asdict(baseline)},
        )
        if session.adopted:
            attempt = session.attempt or attempt
            since = int(session.meta.get("since_ns", since))
            baseline = StageBaseline(**session.meta.get("baseline", {}))
        _emit(
            runtime,
            event="stage-start",
            story=state.story_id,
            stage=stage,
            attempt=attempt,
            session=session.name,
            adopted=session.adopted,
            attach=manager.attach_instructions(session.name),
        )
        if not session.adopted:
            if not profile.prompt_via_argv:
                await manager.deliver(session, prompt, profile)
            elif profile.dialogs:
                ready_task = asyncio.create_task(manager.wait_until_ready(session, profile))
        result = await wait_for_output(
            lambda: check_stage_output(request, paths, since_ns=since, baseline=baseline),
            watch=watch_dirs(request, paths),
            manager=manager,
            session=session,
            timeout=context.timeout(stage),
            stall_timeout=settings.stall_timeout,
            settle=agent.settle,
            turn_end_file=session.turn_end_file,
            attention_file=session.attention_file,
            signals_since_ns=since,
            nudge=nudge,
        )
    except Exception as exc:  # a broken attempt is recorded and routed, never lost
        result = WaitResult("error", detail=f"{type(exc).__name__}: {exc}")  # type: ignore[arg-type]
    finally:
        if ready_task is not None:
            ready_task.cancel()
        if session is not None:
            await asyncio.shield(manager.kill(session.name))
    seconds = round((datetime.now(UTC) - started).total_seconds(), 3)
    return await asyncio.to_thread(
        _update,
        stage,
        state,
        session,
        attempt,
        since,
        started,
        seconds,
        result,
        revision,
        fix_round,
        runtime,
        nudges,
        paths,
    )


def _update(
    stage: StageName,
    state: StoryState,
    session: AgentSession | None,
    attempt: int,
    since: int,
    started: datetime,
    seconds: float,
    result: WaitResult[Any],
    revision: bool,
    fix_round: bool,
    runtime: Runtime[StoryContext] | None,
    nudges: list[NudgeRecord],
    paths: BmadPaths,
) -> dict[str, Any]:
    from orchestrator.bmad import (
        Status,
        WorkflowState,
        add_change_log_row,
        read_story_status,
        read_text,
        set_status,
    )

    if result.done and result.value is not None and result.value.invalid:
        # The output is there but unusable (a gate verdict that is none of the four).
        result = dataclasses.replace(
            result, reason="invalid_output", detail=result.value.invalid, value=None
        )
    outcome = result.value.outcome if result.done and result.value is not None else None
    record = AttemptRecord(
        stage=stage,
        attempt=attempt,
        session=session.name if session else "",
        log_path=str(session.log_path) if session else "",
        started_at=started,
        seconds=seconds,
        end=result.reason,
        outcome=outcome,
        exit_status=result.exit_status,
        detail=result.detail,
        adopted=bool(session and session.adopted),
        turn=result.turn,
        nudges=nudges,
    )
    update: dict[str, Any] = {
        "stage": stage,
        "outcome": outcome,
        "stage_started_ns": since,
        "attempts": {stage: attempt},
        "runs": [record],
        "timings": {stage: seconds},
    }
    _emit(
        runtime,
        event="stage-end",
        story=state.story_id,
        stage=stage,
        attempt=attempt,
        end=result.reason,
        outcome=outcome,
        detail=result.detail,
        seconds=seconds,
    )
    if outcome is None:
        failed = state.failed_attempts + 1
        give_up = failed >= state.policy.attempts_allowed(stage)
        update["failed_attempts"] = failed
        update["recovery_log"] = [
            RecoveryEntry(
                at=datetime.now(UTC),
                stage=stage,
                attempt=attempt,
                problem=result.reason,
                detail=result.detail or result.reason,
                exit_status=result.exit_status,
                last_screen=result.last_screen[-15:],
                action="give up" if give_up else "retry",
            )
        ]
        return update
    output = result.value
    assert output is not None  # an outcome implies an output
    update["failed_attempts"] = 0
    update["outcomes"] = {stage: outcome}
    if output.story_file is not None:
        update["story_file"] = str(output.story_file)
    if revision:
        update["po_revisions"] = state.po_revisions + 1
    if fix_round:
        update["qa_fix_rounds"] = state.qa_fix_rounds + 1
    story_file = output.story_file or (Path(state.story_file) if state.story_file else None)
    if stage == "po":
        update["po_report"] = str(output.report) if output.report else None
        update["po_conditions"] = list(output.conditions)
    if stage == "po" and outcome == "approved" and story_file is not None:
        # BMad's PO only reports GO; moving Draft -> Approved is the orchestrator's job.
        if read_story_status(read_text(story_file)).state != WorkflowState.APPROVED:
            set_status(story_file, Status.APPROVED.value)
        if output.report is not None:
            add_change_log_row(
                story_file,
                f"PO validation {output.detail} ({paths.relative(output.report)}); Approved",
                "bmad-orchestrator",
            )
    return update
