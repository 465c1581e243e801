"""The state one story carries through the graph.

Nodes return partial dicts (LangGraph validates state on read, not on write, and a returned whole
model would append reducer lists twice). Lists and maps that accumulate across stages use reducers
so every attempt stays on record.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

StageName = Literal["sm", "po", "dev", "qa"]
STAGES: tuple[StageName, ...] = ("sm", "po", "dev", "qa")
EndReason = Literal[
    "done",
    "agent_gone",
    "timeout",
    "stalled",
    "cancelled",
    "needs_input",
    "invalid_output",
    "error",
]


def merge(left: dict | None, right: dict | None) -> dict:
    """Reducer for per-stage maps: later values win, keys accumulate."""
    return {**(left or {}), **(right or {})}


def add_up(left: dict | None, right: dict | None) -> dict:
    """Reducer for per-stage totals (seconds spent)."""
    total = dict(left or {})
    for key, value in (right or {}).items():
        total[key] = round(total.get(key, 0.0) + value, 3)
    return total


class StoryPolicy(BaseModel):
    """The bounds routing obeys. Part of the state so routing stays a pure function of it."""

    max_attempts: dict[str, int] = Field(default_factory=dict)
    max_revisions: int = 1
    max_fix_rounds: int = 2
    concerns: Literal["pass", "fail"] = "pass"
    po_conditional: Literal["approve", "reject"] = "approve"

    def attempts_allowed(self, stage: str) -> int:
        return self.max_attempts.get(stage, 2)


class NudgeRecord(BaseModel):
    """Text typed into a session whose agent stopped (or asked) before its output was there."""

    at: datetime
    reason: Literal["turn_end", "attention"]
    text: str


class AttemptRecord(BaseModel):
    """One agent session: which stage, which attempt, where its log is, how it ended.

    `turn` says how the end of the agent's turn was known (turn-end signal, exit, quiet, or
    immediate when `settle` is 0).
    """

    stage: StageName
    attempt: int
    session: str
    log_path: str
    started_at: datetime
    seconds: float
    end: EndReason
    outcome: str | None = None
    exit_status: int | None = None
    detail: str = ""
    adopted: bool = False
    turn: Literal["signal", "exit", "quiet", "immediate"] | None = None
    nudges: list[NudgeRecord] = Field(default_factory=list)


class RecoveryEntry(BaseModel):
    """A failed attempt and what the orchestrator did about it."""

    at: datetime
    stage: StageName
    attempt: int
    problem: EndReason
    detail: str
    exit_status: int | None = None
    last_screen: list[str] = Field(default_factory=list)
    action: Literal["retry", "give up"]


class StoryState(BaseModel):
    """One story from draft to Done (or to a clear failure)."""

    story_id: str
    story_file: str | None = None
    policy: StoryPolicy = Field(default_factory=StoryPolicy)
    start_at: StageName | Literal["done"] = "sm"

    # The stage that ran last and how it ended (None: the attempt failed, see recovery_log).
    stage: StageName | None = None
    outcome: str | None = None
    stage_started_ns: int | None = None  # the watermark of the stage's output
    failed_attempts: int = 0  # consecutive failed attempts of the current stage

    outcomes: Annotated[dict[str, str], merge] = Field(default_factory=dict)
    attempts: Annotated[dict[str, int], merge] = Field(default_factory=dict)
    po_revisions: int = 0
    qa_fix_rounds: int = 0
    po_report: str | None = None  # the PO's last validation report, if it wrote one
    po_conditions: list[str] = Field(default_factory=list)  # of a CONDITIONAL GO

    runs: Annotated[list[AttemptRecord], operator.add] = Field(default_factory=list)
    timings: Annotated[dict[str, float], add_up] = Field(default_factory=dict)
    recovery_log: Annotated[list[RecoveryEntry], operator.add] = Field(default_factory=list)

    result: Literal["done", "failed"] | None = None
    failure_reason: str | None = None
