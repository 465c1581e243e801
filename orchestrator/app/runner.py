"""The epic runner: every story of an epic through the story graph, several at once.

A story starts as soon as its dependencies are Done and a slot is free (no waves). Each story is
one LangGraph thread (`{run_id}:{story}`) checkpointed with `durability="sync"` (SQLite in the
state dir, or Postgres shared between hosts, see `graphs.checkpoints`), so a
crash loses at most the stage in flight, and `--resume` continues the same threads, adopting
agent sessions that outlived the orchestrator. One run at a time holds the state dir's lock.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import commands
from orchestrator.app import isolation, people
from orchestrator.app.config import EpicConfig
from orchestrator.app.driver import StoryDriver
from orchestrator.app.notify import Notifier, story_notice
from orchestrator.app.runlock import RunLock
from orchestrator.app.runs import (
    RunRecord,
    StoryReport,
    close_run,
    last_unfinished,
    now,
    resumed_record,
    save_record,
    set_aside_broken_checkpoint,
    taken_over,
)
from orchestrator.app.schedule import Schedule
from orchestrator.blocking import FILES, GIT, TMUX
from orchestrator.defaults import ExitCode
from orchestrator.errors import CheckpointError, InputError, full_disk
from orchestrator.files import StateDir
from orchestrator.git import Worktrees, check_repository
from orchestrator.methods import Project, StartAt, get_method
from orchestrator.tmux.names import new_run_id
from orchestrator.ui.board import Display, make_display
from orchestrator.ui.terminal import detach_from_terminal
from orchestrator.watch import wait_for_output

CHECKPOINT = "checkpoints.sqlite"
# SIGHUP: the terminal closed or an ssh session ended; the run ends as if interrupted.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
FINAL = ("done", "already done")
OVER_BUDGET = "over_budget"
FINISHED_DRAIN = 30.0  # seconds the last notices get at the end of a run
INTERRUPTED_DRAIN = 2.0  # ... and at the end of an interrupted one


@dataclass
class RunOptions:
    """How to run an epic: the command line's choices."""

    parallel: int | None = None
    only: list[str] = field(default_factory=list)
    simulate: bool = False
    resume: bool = False
    accept_changes: bool = False
    start_at: StartAt | None = None  # with `only`: where those stories start
    live: bool | None = None  # None: a live board when stdout is a terminal

    def checked_start_at(self) -> StartAt | None:
        """`--start-at`, which only makes sense for the stories `--only` names."""
        if self.start_at is not None and not self.only:
            raise InputError("--start-at needs --only: name the stories that start there")
        return self.start_at


class EpicRunner:
    """Runs one epic; `run()` returns the process exit code."""

    def __init__(self, config: EpicConfig, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self.start_at = options.checked_start_at()
        self.selected = config.selected(options.only)
        self.parallel = options.parallel or config.parallel
        self.isolation, self.isolation_note = isolation.choose_isolation(config, self.parallel)
        self.project: Project = get_method(config.method).open(config.project)
        self.worktrees: Worktrees | None = None
        self.reports: dict[str, StoryReport] = {}
        self.removed: list[str] = []
        self.interrupted = False

    async def run(self) -> int:
        """Run (or resume) the epic under the state dir's run lock; returns the exit code."""
        state = StateDir(self.config.state_dir)
        await FILES.run(state.prepare)
        await FILES.run(state.audit)
        with RunLock(state) as lock:
            await FILES.run(lock.acquire, run_id="(starting)", epic=str(self.config.source))
            if self.isolation == "worktree":
                new_run, epic = not self.options.resume, self.config.source
                await GIT.run(check_repository, self.config.project, new_run=new_run, epic=epic)
                install = self.project.install_paths()
                if warning := await GIT.run(isolation.untracked_warning, self.config, install):
                    print(warning, file=sys.stderr, flush=True)
            elif self.isolation_note:
                print(self.isolation_note, flush=True)
            record = await FILES.run(self._open_record)
            if record is None:
                return ExitCode.BAD_INPUT
            lock.rename(record.run_id)
            return await self._run_locked(record)

    def _open_record(self) -> RunRecord | None:
        """The run to drive: a new one, or the unfinished one `--resume` continues."""
        config = self.config
        epic = config.source or Path("epic.yaml")
        self._set_aside_broken_checkpoint()
        previous = last_unfinished(config.state_dir, epic)
        settings = config.model_dump(mode="json")
        if self.options.resume:
            if previous is None:
                print("nothing to resume: no unfinished run of this epic", flush=True)
                return None
            record, self.selected, self.removed, changes = resumed_record(
                previous,
                config,
                selected=self.selected,
                narrowed=bool(self.options.only),
                accept_changes=self.options.accept_changes,
                taken_over=(taken := taken_over(config.state_dir, previous)),
            )
            if taken:
                print(f"left as a newer run left them: {', '.join(taken)}", flush=True)
            if changes:
                print("accepting changes:\n  " + "\n  ".join(changes), flush=True)
            print(f"resuming run {record.run_id}", flush=True)
            if self.options.simulate:
                record = record.model_copy(update={"simulate": True})
        else:
            if previous is not None:
                print(
                    f"note: run {previous.run_id} of this epic did not finish; "
                    "add --resume to continue it instead of starting a new run",
                    flush=True,
                )
            record = RunRecord(
                run_id=new_run_id(),
                epic=str(epic),
                started_at=now(),
                stories=self.selected,
                epic_sha256=config.sha256,
                settings=settings,
                simulate=self.options.simulate,
            )
        record = record.model_copy(update={"interrupted": False})
        save_record(config.state_dir, record)
        return record

    def _set_aside_broken_checkpoint(self) -> None:
        """A corrupt or truncated checkpoint is moved aside, never read as "no history"."""
        own = self.config.checkpointer_url() is None  # Postgres keeps its own integrity
        if own and (message := set_aside_broken_checkpoint(self.config.state_dir / CHECKPOINT)):
            if self.options.resume:
                raise CheckpointError(message + ": run again without --resume")
            print(f"warning: {message}", flush=True)

    async def _run_locked(self, record: RunRecord) -> int:
        from orchestrator.graphs.checkpoints import run_checkpointer
        from orchestrator.graphs.story import build_story_graph

        config = self.config
        self.record = record
        self.context = config.story_context(
            record.run_id,
            simulate=record.simulate,
            adopt=self.options.resume,
            isolation=self.isolation,
        )
        manager = await TMUX.run(self.context.manager)
        self.worktrees = await GIT.run(self.context.worktrees)
        if self.worktrees is not None:
            integration = await GIT.run(self.worktrees.prepare)
            self.project = await FILES.run(self.context.method_project, integration.project)
            print(
                f"isolation: worktree - each story in a worktree of {integration.root.parent}, "
                f"merged into branch {self.worktrees.branch}",
                flush=True,
            )
            for note in self.worktrees.recovered:
                print(f"recovered: {note}", flush=True)
        await manager.reap_vanished()
        if self.removed:
            await self._kill_run_sessions(stories=set(self.removed))
        stages = get_method(config.method).stages  # the board's columns
        self.display: Display = make_display(self.selected, stages=stages, live=self.options.live)
        self.notifier = Notifier(config.notify, manager.events)
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self._interrupt, main, sig)
        url, sqlite_file = config.checkpointer_url(), config.state_dir / CHECKPOINT
        try:
            async with run_checkpointer(url, sqlite_file, config.epic_name()) as (saver, locks):
                self.driver = StoryDriver(
                    graph=build_story_graph().compile(checkpointer=saver),
                    config=config,
                    context=self.context,
                    record=record,
                    worktrees=self.worktrees,
                    start_at=self.start_at,
                    on_event=self.display.event,
                    on_start=lambda story: self.display.story(story, "running"),
                    locks=locks,
                )
                await self.driver.seed_ledger(self.selected)
                try:
                    await self._schedule()
                except asyncio.CancelledError:
                    if not self.interrupted:
                        raise
                    main.uncancel() if main else None
        finally:
            for sig in HANDLED_SIGNALS:
                loop.remove_signal_handler(sig)
            if self.interrupted or sys.exc_info()[0] is not None:  # ended early: nothing left
                commands.stop_running()  # a git stopped mid-command removes its index.lock
                await self._kill_run_sessions()
            await TMUX.run(manager.server.remove_idle_socket)
            self.display.close()
        code = self._finish()
        # Interrupted, the run ends in seconds: notices still going out are given a moment only.
        await self.notifier.drain(INTERRUPTED_DRAIN if self.interrupted else FINISHED_DRAIN)
        return code

    def _interrupt(self, main: asyncio.Task[Any] | None, sig: signal.Signals) -> None:
        """A signal: end the run as interrupted (sessions killed, resumable)."""
        if sig == signal.SIGHUP:
            detach_from_terminal()
        if not self.interrupted and main is not None:
            self.interrupted = True
            main.cancel()

    async def _kill_run_sessions(self, stories: set[str] | None = None) -> None:
        manager = await TMUX.run(self.context.manager)
        for row in await manager.list_sessions():
            if row.run_id == self.record.run_id and (stories is None or row.story_id in stories):
                await manager.kill(row.name)

    async def _schedule(self) -> None:
        schedule = Schedule(
            self.selected,
            self.config.dependencies(),
            done_outside=lambda dep: self.project.standing(dep).start == "done",
        )
        skipped_reported: set[str] = set()
        running: dict[asyncio.Task[StoryReport], str] = {}
        waiting: set[str] = set()  # paused for a person: their slots are free
        answers = people.answers_folder(self.config.state_dir, self.record.run_id)

        def report_skips() -> None:
            for story, reason in schedule.skipped.items():
                if story not in skipped_reported:
                    skipped_reported.add(story)
                    self._record(StoryReport(story_id=story, result="skipped", reason=reason))

        def answered() -> list[str]:
            run_id, folder = self.record.run_id, self.config.state_dir
            return [s for s in sorted(waiting) if people.has_answer(folder, run_id, s)]

        try:
            while True:
                report_skips()
                for answered_story in answered()[: self.parallel - len(running)]:
                    waiting.discard(answered_story)  # answered while the run went on: resume it
                    running[asyncio.create_task(self._run_story(answered_story))] = answered_story
                while len(running) < self.parallel and (story := schedule.next()) is not None:
                    running[asyncio.create_task(self._run_story(story))] = story
                if not running:
                    return  # only stories waiting for a person (or nothing) remain
                watch: asyncio.Task[Any] = asyncio.create_task(
                    wait_for_output(lambda: answered() or None, watch=[answers], timeout=86400)
                )
                pending: set[asyncio.Task[Any]] = {*running, *([watch] if waiting else [])}
                finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                watch.cancel()
                for task in finished:
                    if task is watch:
                        continue
                    done_story = running.pop(task)
                    report: StoryReport = task.result()
                    self._record(report)
                    if report.result == "waiting":
                        waiting.add(done_story)
                    else:
                        schedule.finished(
                            done_story, done=report.result in FINAL, result=report.result
                        )
        finally:
            for task in running:
                task.cancel()
            if running:
                results = await asyncio.gather(*running, return_exceptions=True)
                for story, ended in zip(running.values(), results, strict=True):
                    done = ended if isinstance(ended, StoryReport) else None
                    self._record(done or await self.driver.interrupted(story, INTERRUPTED_DRAIN))

    def _record(self, report: StoryReport) -> None:
        self.reports[report.story_id] = report
        if report.result == "waiting" and report.waiting:
            asked = report.waiting
            self.display.waiting(
                report.story_id, asked["gate"], asked["question"], asked.get("answer", [])
            )
        else:
            reason = f": {report.reason}" if report.reason else ""
            self.display.story(report.story_id, report.result + reason)
        if notice := story_notice(report):
            event, fields = notice
            self.notifier.send(
                event, epic=str(self.config.source), run_id=self.record.run_id, **fields
            )

    async def _run_story(self, story: str) -> StoryReport:
        """One story through the graph; an unexpected error fails this story, not the run."""
        try:
            return await self.driver.drive(story)
        except Exception as exc:
            if full := full_disk(exc):  # every story would fail alike: the run stops, resumable
                raise full from exc
            manager = await TMUX.run(self.context.manager)
            manager.events.write("story-error", story=story, error=f"{type(exc).__name__}: {exc}")
            return StoryReport(
                story_id=story,
                result="error",
                reason=(
                    f"internal error: {type(exc).__name__}: {exc} "
                    "(the checkpoint is kept: fix the cause, then run with --resume)"
                ),
            )

    def _finish(self) -> int:
        waits = "waits for a story that is waiting for a person; --resume once it is answered"
        reports = [
            self.reports.get(s)
            or StoryReport(
                story_id=s,
                result="interrupted" if self.interrupted else "skipped",
                reason=None if self.interrupted else waits,
            )
            for s in self.selected
        ]
        if self.interrupted:
            code = ExitCode.INTERRUPTED
        elif any(r.result == "waiting" for r in reports):
            code = ExitCode.WAITING
        elif all(r.result in ("done", "already done") for r in reports):
            code = ExitCode.OK
        else:
            code = ExitCode.FAILED
        record, path = close_run(
            self.config.state_dir,
            self.record,
            reports,
            interrupted=self.interrupted,
            exit_code=code,
            isolation=self.isolation,
            branch=self.worktrees.branch if self.worktrees is not None else None,
            narrowed=self.options.resume and bool(self.options.only),
        )
        self.display.summary(reports)
        if self.worktrees is not None:
            for line in isolation.home_lines(
                self.worktrees,
                reports,
                merge_into=self.config.git.merge_into,
                finished=record.finished,
            ):
                print(line, flush=True)
        print(f"report: {path}", flush=True)
        if self.interrupted:
            again = "--simulate --resume" if self.options.simulate else "--resume"
            print(f"interrupted: resume with {again} (run {record.run_id})", flush=True)
        for r in reports:
            if r.result == "waiting" and r.waiting:
                answer = "\n    ".join(r.waiting.get("answer") or [])
                print(f"waiting for a person: story {r.story_id}; answer with:\n    {answer}")
        counts = dict(Counter(r.result for r in reports))
        self.notifier.send(
            "run_finished",
            epic=str(self.config.source),
            run_id=record.run_id,
            exit_code=int(code),
            results=counts,
        )
        return code
