"""The one mechanism behind the sm, po, dev and qa nodes.

A stage attempt: spawn the stage's agent session, wait until its output is valid and its turn is
over (nudging it when it stops without output), kill the session whatever happened, and return a
partial state update. A failed attempt (agent gone, timeout, stall, needs input, invalid output,
error) is recorded in the recovery log and routed back to the same stage or to `failed` by the
routing functions; it is not raised, so the record reaches the checkpoint. What the stage's
files mean is the method's business (`orchestrator.methods`), never this module's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from orchestrator.blocking import FILES, GIT, TMUX
from orchestrator.errors import OrchestratorError, full_disk
from orchestrator.git import (
    Workspace,
    Worktrees,
    begin_resolve,
    commit,
    describe_commit,
    unresolved,
)
from orchestrator.methods import Project, StageOutput, StageRequest
from orchestrator.nodes.accounting import attempt_usage, budget_stop, live_reader
from orchestrator.nodes.events import emit
from orchestrator.nodes.inflight import forget, recall, remember
from orchestrator.nodes.nudging import Nudger
from orchestrator.nodes.routing import person_asked_for, qa_failed, resolving_merge
from orchestrator.stages import StageName
from orchestrator.state import AttemptRecord, RecoveryEntry, StoryContext, StoryState
from orchestrator.tmux import AgentSession, TmuxAgentManager
from orchestrator.tmux.logs import find_in_log
from orchestrator.tmux.screen import wait_until_ready
from orchestrator.watch import NudgeReason, WaitResult, filesystem_now, wait_for_output

SCREEN_LINES = 3  # of a failed attempt's last screen, shown with its stage-end event
StageNode = Callable[[StoryState, Runtime[StoryContext]], Awaitable[dict[str, Any]]]


def make_stage_node(stage: StageName) -> StageNode:
    """A LangGraph node running `stage` for the story in the state."""

    async def node(state: StoryState, runtime: Runtime[StoryContext]) -> dict[str, Any]:
        return await run_stage(stage, state, runtime.context or StoryContext(), runtime)

    node.__name__ = f"{stage}_node"
    node.__doc__ = f"Run the BMad {stage.upper()} agent for the story in a fresh tmux session."
    return node


async def run_stage(
    stage: StageName,
    state: StoryState,
    context: StoryContext,
    runtime: Runtime[StoryContext] | None = None,
) -> dict[str, Any]:
    """One attempt of `stage` for the story in `state`; returns the partial state update."""
    if stop := await budget_stop(context):
        # No attempt: the stage is left to run again once the budget is raised.
        return {"stage": stage, "outcome": None, "budget_stop": stop}
    manager: TmuxAgentManager = await TMUX.run(context.manager)
    worktrees = await GIT.run(context.worktrees)
    resolving = stage == "dev" and resolving_merge(state)
    workspace: Workspace | None = None
    conflicts: list[str] = []
    if worktrees is not None:
        try:
            workspace, conflicts = await GIT.run(_workspace, worktrees, state, resolving=resolving)
        except OrchestratorError as exc:  # no worktree, or git.setup failed: a failed attempt
            return _unprepared(stage, state, exc)
    root = workspace.project if workspace is not None else None
    project: Project = await FILES.run(context.method_project, root)
    settings = context.stage(stage)
    agent = context.agent_for(stage)
    profile = agent.build()
    story_file = Path(state.story_file) if state.story_file else None
    if story_file is None:
        story_file = await FILES.run(project.story_file, state.story_id)
    revision = stage == "sm" and (
        state.outcomes.get("po") == "rejected" or person_asked_for(state, "after_po")
    )
    fix_round = stage == "dev" and (qa_failed(state) or person_asked_for(state, "after_qa"))
    request = StageRequest(
        stage,
        state.story_id,
        story_file,
        revision=revision,
        fix_round=fix_round and not resolving,
        findings=Path(state.po_report) if revision and state.po_report else None,
        po_conditional=state.policy.po_conditional,
        conflicts=tuple(conflicts),
        merge_from=worktrees.branch if resolving and worktrees is not None else None,
        activation=profile.activation,
        note=state.person_note,
    )
    agent_name = await FILES.run(project.agent_name, stage) if profile.agent_flag else ""
    cwd = root or context.project
    ledger = context.ledger()
    adopting = context.adopt_live_sessions and await manager.adoptable(stage, state.story_id)
    if not adopting:  # an adopted agent may have moved the Status already
        await FILES.run(project.before_stage, request)
    prompt = project.prompt(request, settings.prompt)
    attempt = state.attempts.get(stage, 0) + 1
    since = await FILES.run(lambda: filesystem_now(manager.state.folder("run")))
    baseline = await FILES.run(project.baseline, request)
    started = datetime.now(UTC)
    session: AgentSession | None = None
    ready_task: asyncio.Task[bool] | None = None
    result: WaitResult[Any]

    def nudged(reason: NudgeReason, count: int) -> None:
        emit(
            runtime,
            event="nudge",
            story=state.story_id,
            stage=stage,
            attempt=attempt,
            reason=reason,
            count=count,
        )

    env: dict[str, str] = {"BMAD_METHOD": context.method}
    if worktrees is not None:  # the agent's own git commands skip the install copies too
        env |= worktrees.session_env()

    def check() -> StageOutput | None:
        if workspace is not None and request.merge_from is not None:
            assert worktrees is not None
            if unresolved(worktrees, workspace, request.conflicts):
                return None  # a Status alone does not finish a merge round
        return project.check(request, since_ns=since, baseline=checked)

    nudge = Nudger(
        manager,
        profile,
        text=project.nudge(request),
        limit=agent.nudges,
        output_ready=check,
        person_answers="on_needs_input" in state.policy.gates,
        on_nudge=nudged,
    )
    key = (state.story_id, stage)
    lost = None if adopting else await FILES.run(recall, manager.state, *key, manager.run_id)
    found = None
    if lost is not None:  # an attempt of this run that a crash took: did it finish its work?
        fresh = (attempt, since, baseline)
        attempt, since, checked = lost
        found = await FILES.run(check)
        attempt, since, baseline = lost if found is not None else fresh
    checked = baseline
    await FILES.run(
        remember, manager.state, *key,
        run_id=manager.run_id, attempt=attempt, since_ns=since, baseline=dict(baseline),
    )  # fmt: skip
    try:
        if found is not None:
            result = WaitResult("done", value=found, turn="immediate")
        else:
            session = nudge.session = await manager.spawn(
                stage,
                state.story_id,
                profile=profile,
                prompt=prompt,
                attempt=attempt,
                env=env,
                cwd=root,
                story_file=story_file,
                adopt=context.adopt_live_sessions,
                meta={"since_ns": since, "baseline": dict(baseline)},
                agent=agent_name,
            )
            ledger.track(session.name, live_reader(profile, session, cwd, context))
            if session.adopted:
                attempt = session.attempt or attempt
                since = int(session.meta.get("since_ns", since))
                baseline = session.meta.get("baseline", baseline)
            emit(
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
                    ready_task = asyncio.create_task(
                        wait_until_ready(manager.server, session, profile, manager.events)
                    )
            checked = baseline
            result = await wait_for_output(
                check,
                watch=project.watch_dirs(request),
                probe=manager.probe(session),
                timeout=context.timeout(stage),
                stall_timeout=settings.stall_timeout,
                settle=agent.settle,
                turn_end_file=session.turn_end_file,
                attention_file=session.attention_file,
                signals_since_ns=since,
                nudge=nudge,
            )
    except Exception as exc:  # a broken attempt is recorded and routed, never lost
        if full := full_disk(exc):  # ... but a full disk stops the run: nothing can be recorded
            raise full from exc
        result = WaitResult("error", detail=f"{type(exc).__name__}: {exc}")  # type: ignore[arg-type]
    finally:
        if ready_task is not None:
            ready_task.cancel()
        if session is not None:
            await asyncio.shield(manager.kill(session.name))
            ledger.untrack(session.name)
        await asyncio.shield(FILES.run(forget, manager.state, *key))
    usage = None
    warnings = list(session.meta.get("warnings") or []) if session else []
    if found is not None:
        warnings.append(f"attempt {attempt} had finished its work before a crash: not run again")
    if session is not None and profile.hooks_off_pattern is not None:
        said = await FILES.run(find_in_log, session.log_path, profile.hooks_off_pattern)
        if said:  # the CLI refused our hooks after all: said, never a silent quiet
            warnings.append(f"{profile.name} skipped its hooks: {said}")
            manager.events.write("cli-warning", session=session.name, warning=said)
    if session is not None:
        usage = await attempt_usage(profile, session, cwd, context)
        ledger.add(usage)
    if result.reason == "needs_input" and (asked := nudge.question_detail()):
        result = dataclasses.replace(result, detail=asked)
    if result.done and result.value is not None and result.value.invalid:
        # The output is there but unusable (a verdict that is none of the four).
        result = dataclasses.replace(
            result, reason="invalid_output", detail=result.value.invalid, value=None
        )
    record = AttemptRecord(
        stage=stage,
        attempt=attempt,
        session=session.name if session else "",
        log_path=str(session.log_path) if session else "",
        started_at=started,
        seconds=round((datetime.now(UTC) - started).total_seconds(), 3),
        end=result.reason,
        outcome=result.value.outcome if result.done and result.value is not None else None,
        exit_status=result.exit_status,
        # A done wait has nothing to say; its output may (a blocking condition, a count).
        detail=result.value.detail if result.done and result.value is not None else result.detail,
        adopted=bool(session and session.adopted),
        turn=result.turn,
        nudges=nudge.nudges,
        agent=profile.name,
        usage=usage,
        warnings=warnings,
    )
    emit(
        runtime,
        event="stage-end",
        story=state.story_id,
        stage=stage,
        attempt=attempt,
        end=result.reason,
        outcome=record.outcome,
        detail=result.detail,
        seconds=record.seconds,
        usage=usage.model_dump() if usage is not None else None,
        log=record.log_path,
        screen=[line for line in result.last_screen if line.strip()][-SCREEN_LINES:],
    )
    if record.outcome is None:
        update = _failed_attempt(state, record, since, result)
    else:
        assert result.value is not None  # an outcome implies an output
        await FILES.run(project.after_stage, request, result.value)
        update = _succeeded(state, request, record, since, result.value)
    if worktrees is not None and workspace is not None:
        update |= await _commit_attempt(worktrees, workspace, request, record, manager)
    return update


def _workspace(
    worktrees: Worktrees, state: StoryState, *, resolving: bool
) -> tuple[Workspace, list[str]]:
    """The story's worktree (made on first use) and, in a merge round, the files in conflict."""
    workspace = worktrees.story(state.story_id)
    if not resolving:
        return workspace, []
    message = f"bmad({state.story_id}): merge {worktrees.branch}"
    return workspace, begin_resolve(worktrees, workspace, message, files=state.merge_conflicts)


async def _commit_attempt(
    worktrees: Worktrees,
    workspace: Workspace,
    request: StageRequest,
    record: AttemptRecord,
    manager: TmuxAgentManager,
) -> dict[str, Any]:
    """Commit what the attempt changed on the story's branch; the state fields that record it."""
    story = request.story_id
    if record.outcome is not None:
        message = f"bmad({story}): {record.stage} {record.outcome}"
    else:
        message = f"bmad({story}): {record.stage} attempt {record.attempt} ended {record.end}"
    update: dict[str, Any] = {"workdir": str(workspace.project), "branch": workspace.branch}
    try:
        made = await GIT.run(commit, worktrees, workspace, message, files=request.conflicts)
        if made is not None:
            update["commits"] = [await GIT.run(describe_commit, worktrees, made)]
    except OrchestratorError as exc:  # the work stays in the worktree; integrate commits it
        manager.events.write("commit-error", story=story, stage=record.stage, error=str(exc))
    return update


def _unprepared(stage: StageName, state: StoryState, exc: Exception) -> dict[str, Any]:
    """A failed attempt that never started: the story's worktree could not be made ready."""
    now = datetime.now(UTC)
    record = AttemptRecord(
        stage=stage,
        attempt=state.attempts.get(stage, 0) + 1,
        session="",
        log_path="",
        started_at=now,
        seconds=0.0,
        end="error",
        detail=str(exc),
    )
    result: WaitResult[Any] = WaitResult("error", detail=str(exc))  # type: ignore[arg-type]
    return _failed_attempt(state, record, 0, result)


def _base_update(record: AttemptRecord, since: int) -> dict[str, Any]:
    return {
        "stage": record.stage,
        "outcome": record.outcome,
        "stage_started_ns": since,
        "attempts": {record.stage: record.attempt},
        "runs": [record],
        "timings": {record.stage: record.seconds},
    }


def _failed_attempt(
    state: StoryState, record: AttemptRecord, since: int, result: WaitResult[Any]
) -> dict[str, Any]:
    failed = state.failed_attempts + 1
    give_up = failed >= state.policy.attempts_allowed(record.stage)
    entry = RecoveryEntry(
        at=datetime.now(UTC),
        stage=record.stage,
        attempt=record.attempt,
        problem=record.end,
        detail=result.detail or result.reason,
        exit_status=result.exit_status,
        last_screen=result.last_screen[-15:],
        action="give up" if give_up else "retry",
    )
    return {**_base_update(record, since), "failed_attempts": failed, "recovery_log": [entry]}


def _succeeded(
    state: StoryState,
    request: StageRequest,
    record: AttemptRecord,
    since: int,
    output: StageOutput,
) -> dict[str, Any]:
    update = _base_update(record, since)
    update["failed_attempts"] = 0
    update["person_note"] = None  # a person's note is handed to one stage that succeeds
    update["outcomes"] = {record.stage: record.outcome}
    if output.story_file is not None:
        update["story_file"] = str(output.story_file)
    if request.revision:
        update["po_revisions"] = state.po_revisions + 1
    if request.fix_round:
        update["qa_fix_rounds"] = state.qa_fix_rounds + 1
    if request.merge_from is not None:
        update["merge_rounds"] = state.merge_rounds + 1
        update["outcomes"] = {record.stage: record.outcome, "integrate": "resolved"}
    if record.stage == "po":
        update["po_report"] = str(output.report) if output.report else None
        update["po_conditions"] = list(output.conditions)
    elif output.conditions:
        update["deferred"] = list(dict.fromkeys([*state.deferred, *output.conditions]))
    return update
