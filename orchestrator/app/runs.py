"""Run records: which runs exist, which one is unfinished, and the report of each.

`{state_dir}/runs/{run_id}/run.json` says what a run was started with (the stories, and the epic
file's hash and settings, so a resume notices an edited epic) and whether it finished;
`report.json` beside it is the per-story account users read after a night's run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.files import StateDir, read_private, write_private

StoryResult = Literal["done", "already done", "failed", "skipped", "interrupted", "error"]


class RunRecord(BaseModel):
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


class StoryReport(BaseModel):
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
    seconds: dict[str, float] = Field(default_factory=dict)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    recovery_log: list[dict[str, Any]] = Field(default_factory=list)


class RunReport(BaseModel):
    run_id: str
    epic: str
    started_at: datetime
    finished_at: datetime
    interrupted: bool
    exit_code: int
    stories: list[StoryReport]


def save_record(state_dir: Path, record: RunRecord) -> None:
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


def save_report(state_dir: Path, report: RunReport) -> Path:
    folder = StateDir(state_dir).folder(Path("runs") / report.run_id)
    path = folder / "report.json"
    write_private(path, report.model_dump_json(indent=2))
    return path


def now() -> datetime:
    return datetime.now(UTC)
