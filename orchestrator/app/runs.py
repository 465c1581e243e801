"""Run records: which runs exist, which one is unfinished, and the report of each.

`{state_dir}/runs/{run_id}/run.json` says what a run was started with (the stories, and the epic
file's hash and settings, so a resume notices an edited epic) and whether it finished;
`report.json` beside it is the per-story account users read after a night's run.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from orchestrator.agents.usage import UsageTotal
from orchestrator.errors import CheckpointError, EpicChangedError
from orchestrator.files import StateDir, read_private, write_private

if TYPE_CHECKING:
    from orchestrator.app.config import EpicConfig

StoryResult = Literal[
    "done",
    "already done",
    "failed",
    "merge_conflict",
    "over_budget",
    "waiting",
    "skipped",
    "interrupted",
    "error",
]


class RunRecord(BaseModel):
    """What a run was started with (stories, epic hash and settings) and how it ended."""

    run_id: str
    epic: str
    started_at: datetime
    stories: list[str]
    epic_sha256: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    finished: bool = False
    finished_at: datetime | None = None
    interrupted: bool = False
    # Its checkpoint was corrupt and was set aside: it cannot be resumed.
    abandoned: str | None = None
    simulate: bool = False  # every agent was the simulated agent (a resume keeps that)


class StoryReport(BaseModel):
    """One story's account in report.json."""

    story_id: str
    result: StoryResult
    reason: str | None = None
    story_file: str | None = None
    status_raw: str | None = None  # of a story skipped because its Status could not be read
    outcomes: dict[str, str] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict)
    po_revisions: int = 0
    qa_fix_rounds: int = 0
    po_report: str | None = None
    po_conditions: list[str] = Field(default_factory=list)
    deferred: list[str] = Field(default_factory=list)  # review findings left for later
    host: str | None = None  # the worker's host, on Temporal
    seconds: dict[str, float] = Field(default_factory=dict)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    recovery_log: list[dict[str, Any]] = Field(default_factory=list)
    # Under worktree isolation: the story's branch and worktree, its commits and its merge.
    branch: str | None = None
    workdir: str | None = None
    commits: list[str] = Field(default_factory=list)
    merge_commit: str | None = None
    merge_rounds: int = 0
    merge_conflicts: list[str] = Field(default_factory=list)
    usage: UsageTotal = Field(default_factory=UsageTotal)  # per attempt: in `runs`
    gates: list[dict[str, Any]] = Field(default_factory=list)  # each question and its answer
    waiting: dict[str, Any] | None = None  # the open question of a story that waits


class RunReport(BaseModel):
    """report.json: the run and each of its stories."""

    run_id: str
    epic: str
    started_at: datetime
    finished_at: datetime
    interrupted: bool
    exit_code: int
    stories: list[StoryReport]
    isolation: str = "shared"
    branch: str | None = None  # the integration branch, under worktree isolation
    usage: UsageTotal = Field(default_factory=UsageTotal)


def save_record(state_dir: Path, record: RunRecord) -> None:
    """Write the run's `run.json` (owner-only)."""
    folder = StateDir(state_dir).folder(Path("runs") / record.run_id)
    write_private(folder / "run.json", record.model_dump_json(indent=2))


def load_records(state_dir: Path) -> list[RunRecord]:
    """All runs of this state dir, oldest first (run ids sort by time)."""
    folder = state_dir / "runs"
    if not folder.is_dir() or folder.is_symlink():
        return []
    records = []
    for path in sorted(folder.glob("*/run.json")):
        try:
            records.append(RunRecord.model_validate(json.loads(read_private(path))))
        except (OSError, ValueError):
            continue
    return records


def last_unfinished(state_dir: Path, epic: Path) -> RunRecord | None:
    """The newest run of `epic` that did not finish (interrupted or crashed) and can resume."""
    candidates = [
        r
        for r in load_records(state_dir)
        if r.epic == str(epic) and not r.finished and r.abandoned is None
    ]
    return candidates[-1] if candidates else None


def taken_over(state_dir: Path, previous: RunRecord) -> list[str]:
    """Stories of `previous` that a newer run of the same epic has run since: a resume of
    `previous` leaves them as that run left them (it would run a finished stage again)."""
    newer = [
        r
        for r in load_records(state_dir)
        if r.epic == previous.epic and r.started_at > previous.started_at
    ]
    return [s for s in previous.stories if any(s in r.stories for r in newer)]


# Results a `--resume` goes on from: a run is not finished while a story has one of them.
RESUMABLE = ("interrupted", "error", "over_budget", "waiting")


def close_run(
    state_dir: Path,
    record: RunRecord,
    reports: list[StoryReport],
    *,
    interrupted: bool,
    exit_code: int,
    isolation: str,
    branch: str | None,
    narrowed: bool = False,
) -> tuple[RunRecord, Path]:
    """Record how the run ended and write its report: (the record, the report's path).

    A resume narrowed to some stories (`--only`, an answer) finishes the run only when every
    story of the run, these and the others as they last ended, has ended for good.
    """
    if narrowed:  # the run's other stories keep their last account
        earlier = load_report(state_dir, record.run_id)
        fresh = {r.story_id: r for r in reports}
        old = {r.story_id: r for r in earlier.stories} if earlier else {}
        reports = [fresh.get(s) or old[s] for s in record.stories if s in fresh or s in old]
    every = {r.story_id for r in reports} >= set(record.stories)
    finished = not interrupted and every and all(r.result not in RESUMABLE for r in reports)
    record = record.model_copy(
        update={
            "finished": finished,
            "finished_at": now() if finished else None,
            "interrupted": interrupted,
        }
    )
    save_record(state_dir, record)
    report = RunReport(
        run_id=record.run_id,
        epic=record.epic,
        started_at=record.started_at,
        finished_at=now(),
        interrupted=interrupted,
        exit_code=exit_code,
        stories=reports,
        isolation=isolation,
        branch=branch,
        usage=sum_usage(r.usage for r in reports),
    )
    return record, save_report(state_dir, report)


def load_report(state_dir: Path, run_id: str) -> RunReport | None:
    """A run's last report, if it wrote one."""
    try:
        return RunReport.model_validate_json(
            read_private(state_dir / "runs" / run_id / "report.json")
        )
    except (OSError, ValueError):
        return None


def save_report(state_dir: Path, report: RunReport) -> Path:
    """Write the run's `report.json` (owner-only); returns its path."""
    folder = StateDir(state_dir).folder(Path("runs") / report.run_id)
    path = folder / "report.json"
    write_private(path, report.model_dump_json(indent=2))
    return path


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def epic_changes(previous: RunRecord, config: EpicConfig) -> list[str]:
    """What differs between the epic a run began with and `config`, in words; [] if nothing."""
    if not previous.epic_sha256 or previous.epic_sha256 == config.sha256:
        return []
    before, after = previous.settings, config.model_dump(mode="json")
    old = {s["id"]: s.get("depends_on", []) for s in before.get("stories", [])}
    new = {s.id: list(s.depends_on) for s in config.stories}
    changes = [f"story {s} added" for s in new if s not in old]
    changes += [f"story {s} removed" for s in old if s not in new]
    changes += [
        f"story {s}: depends_on {old[s]} -> {new[s]}" for s in new if s in old and old[s] != new[s]
    ]
    changes += [
        f"{key} changed"
        for key in sorted(set(before) | set(after))
        if key != "stories" and before.get(key) != after.get(key)
    ]
    return changes


def set_aside_broken_checkpoint(path: Path) -> str | None:
    """Move a corrupt or truncated checkpoint aside (with its WAL files); None if it is fine.

    The runs that used it are marked abandoned: they cannot be resumed. Returns what happened.
    """
    from orchestrator.graphs.story import check_sqlite_checkpoint

    try:
        check_sqlite_checkpoint(path)
        return None
    except CheckpointError as exc:
        problem = str(exc)
    aside = path.with_name(f"{path.name}.corrupt-{now().strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    for stale in load_records(path.parent):
        if not stale.finished and stale.abandoned is None:
            save_record(
                path.parent,
                stale.model_copy(update={"abandoned": f"checkpoint set aside: {aside}"}),
            )
    return (
        f"{problem}; it is kept as {aside}. Runs that used it cannot be resumed; "
        "a new run starts every story from its story file's Status"
    )


def resumed_record(
    previous: RunRecord,
    config: EpicConfig,
    *,
    selected: list[str],
    narrowed: bool,
    accept_changes: bool,
    taken_over: Collection[str] = (),
) -> tuple[RunRecord, list[str], list[str], list[str]]:
    """The unfinished run, continued with the epic as it is now.

    Returns the record, the stories to run (those the run began with, plus added ones, unless
    `--only` narrowed them; never those `taken_over` by a newer run), the stories removed from
    the epic, and the changes accepted. An epic changed since the run began raises
    `EpicChangedError` unless `accept_changes`.
    """
    epic = config.source or Path("epic.yaml")
    changes = epic_changes(previous, config)
    if changes and not accept_changes:
        raise EpicChangedError(
            f"{epic} changed since run {previous.run_id} began:\n  "
            + "\n  ".join(changes)
            + "\nresume with --accept-changes to go on with the epic as it is now "
            "(sessions of removed stories are killed, added stories run), or restore it"
        )
    known = {s["id"] for s in previous.settings.get("stories", [])} or set(previous.stories)
    added = [s for s in config.story_ids if s not in known]
    removed = [s for s in previous.stories if s not in config.story_ids]
    if not narrowed:  # the stories that run was started with
        selected = [s for s in config.story_ids if s in previous.stories or s in added]
    selected = [s for s in selected if s not in taken_over]
    kept = [s for s in previous.stories if s not in taken_over]
    record = previous.model_copy(
        update={
            # A narrowed resume keeps the run's other stories for a later `--resume`.
            "stories": [s for s in config.story_ids if s in kept or s in selected]
            if narrowed
            else selected,
            "epic_sha256": config.sha256,
            "settings": config.model_dump(mode="json"),
        }
    )
    return record, selected, removed, changes


def story_report(state: Any) -> StoryReport:
    """A finished story graph state (`StoryState`) as its account in report.json."""
    ended = ("done", "merge_conflict", "over_budget")
    result: StoryResult = state.result if state.result in ended else "failed"
    if state.start_at == "done":
        result = "already done"
    return StoryReport(
        story_id=state.story_id,
        result=result,
        reason=state.failure_reason,
        story_file=state.story_file,
        outcomes=state.outcomes,
        attempts=state.attempts,
        po_revisions=state.po_revisions,
        qa_fix_rounds=state.qa_fix_rounds,
        po_report=state.po_report,
        po_conditions=state.po_conditions,
        deferred=state.deferred,
        seconds=state.timings,
        runs=[r.model_dump(mode="json") for r in state.runs],
        recovery_log=[e.model_dump(mode="json") for e in state.recovery_log],
        branch=state.branch,
        workdir=state.workdir,
        commits=state.commits,
        merge_commit=state.merge_commit,
        merge_rounds=state.merge_rounds,
        merge_conflicts=state.merge_conflicts,
        usage=state.usage,
        gates=[g.model_dump(mode="json") for g in state.gates_log],
    )


def sum_usage(totals: Iterable[UsageTotal]) -> UsageTotal:
    """Several stories' usage as one total."""
    total = UsageTotal()
    for item in totals:
        total = total.plus(item)
    return total
