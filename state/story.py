"""The state one story carries through the graph, and the narrower input and output schemas.

Nodes return partial dicts (LangGraph validates state on read, not on write, and a returned whole
model would append reducer lists twice). Lists and maps that accumulate across stages use reducers
so every attempt stays on record. A caller hands the graph a `StoryInput` and gets a
`StoryOutput` back; `StoryState` adds what only routing needs.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.agents.usage import Usage, UsageTotal
from orchestrator.defaults import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_FIX_ROUNDS,
    DEFAULT_MAX_MERGE_ROUNDS,
    DEFAULT_MAX_REVISIONS,
)
from orchestrator.stages import STAGES, GateName, StageName, StartAt, StepName

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


class Budget(BaseModel):
    """A spending limit: tokens (every kind counted), dollars, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int | None = Field(default=None, gt=0)
    usd: float | None = Field(default=None, gt=0)

    def exceeded_by(self, total: UsageTotal) -> str | None:
        """Why `total` is over this budget, or None while it is within it."""
        if self.tokens is not None and total.tokens >= self.tokens:
            return f"{total.tokens} tokens used of a budget of {self.tokens}"
        if self.usd is not None and total.usd >= self.usd:
            return f"${total.usd:.2f} spent of a budget of ${self.usd:.2f}"
        return None


class StoryPolicy(BaseModel):
    """The bounds routing obeys. Part of the state so routing stays a pure function of it."""

    max_attempts: dict[str, int] = Field(default_factory=dict)
    max_revisions: int = DEFAULT_MAX_REVISIONS
    max_fix_rounds: int = DEFAULT_MAX_FIX_ROUNDS
    concerns: Literal["pass", "fail"] = "pass"
    po_conditional: Literal["approve", "reject"] = "approve"
    max_merge_rounds: int = DEFAULT_MAX_MERGE_ROUNDS
    budget: Budget | None = None  # the story's; past it the story stops after its stage
    gates: list[GateName] = Field(default_factory=list)  # where the story waits for a person
    # The method's stages: BMad v6 has no PO (SM goes straight on), build-auto no SM.
    stages: list[StageName] = Field(default_factory=lambda: list(STAGES))

    def attempts_allowed(self, stage: str) -> int:
        """How many attempts `stage` gets before the story fails."""
        return self.max_attempts.get(stage, DEFAULT_MAX_ATTEMPTS)


class NudgeRecord(BaseModel):
    """What a session's agent was told when it stopped (or asked) before its output was there.

    `via`: through the CLI's waiting hook, or typed; None when it could not be delivered
    (`error` says why).
    """

    at: datetime
    reason: Literal["turn_end", "attention"]
    text: str
    via: Literal["hook", "typed"] | None = None
    error: str | None = None


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
    agent: str = ""  # the profile that ran it (claude, codex, ...)
    usage: Usage | None = None  # None: the CLI's usage record could not be read
    warnings: list[str] = Field(default_factory=list)  # what the CLI could not do this time


class RecoveryEntry(BaseModel):
    """A failed attempt and what the orchestrator did about it."""

    at: datetime
    stage: StepName
    attempt: int
    problem: EndReason
    detail: str
    exit_status: int | None = None
    last_screen: list[str] = Field(default_factory=list)
    action: Literal["retry", "give up"]


class GateRecord(BaseModel):
    """A story waiting for a person at a gate, and the answer it got."""

    gate: GateName
    stage: StageName | None
    question: str
    asked_at: datetime
    action: Literal["approve", "reject", "reply"]
    note: str | None = None
    by: str = ""  # the OS user who answered
    answered_at: datetime


StoryResult = Literal["done", "failed", "merge_conflict", "over_budget"]


class StoryInput(BaseModel):
    """What a caller hands the story graph: the story, where it starts, and its bounds."""

    story_id: str
    story_file: str | None = None
    policy: StoryPolicy = Field(default_factory=StoryPolicy)
    start_at: StartAt = "sm"


class StoryOutput(BaseModel):
    """What the story graph hands back: how the story ended, and its whole record."""

    story_id: str
    story_file: str | None = None
    result: StoryResult | None = None
    failure_reason: str | None = None
    outcomes: Annotated[dict[str, str], merge] = Field(default_factory=dict)
    attempts: Annotated[dict[str, int], merge] = Field(default_factory=dict)
    po_revisions: int = 0
    qa_fix_rounds: int = 0
    po_report: str | None = None  # the PO's last validation report, if it wrote one
    po_conditions: list[str] = Field(default_factory=list)  # of a CONDITIONAL GO
    # Review findings left for later (v6 code-review's [Review][Defer], build-auto's deferred:).
    deferred: list[str] = Field(default_factory=list)
    runs: Annotated[list[AttemptRecord], operator.add] = Field(default_factory=list)
    # Under worktree isolation: where the story worked, its branch, its commits and its merge.
    workdir: str | None = None  # the project folder inside the story's worktree
    branch: str | None = None
    commits: Annotated[list[str], operator.add] = Field(default_factory=list)  # "id subject"
    merge_commit: str | None = None
    merge_rounds: int = 0  # Dev rounds that resolved a conflict with the integration branch
    merge_conflicts: list[str] = Field(default_factory=list)  # of the last conflicting merge
    # Why the story stopped for money: set by a stage that found the run's budget spent.
    budget_stop: str | None = None
    gates_log: Annotated[list[GateRecord], operator.add] = Field(default_factory=list)

    @property
    def usage(self) -> UsageTotal:
        """What every attempt of the story used so far."""
        return UsageTotal.of(run.usage for run in self.runs)

    timings: Annotated[dict[str, float], add_up] = Field(default_factory=dict)
    recovery_log: Annotated[list[RecoveryEntry], operator.add] = Field(default_factory=list)


class StoryState(StoryInput, StoryOutput):
    """One story from draft to Done (or to a clear failure): input, output, and routing's own."""

    # The step that ran last and how it ended (None: the attempt failed, see recovery_log).
    stage: StepName | None = None
    outcome: str | None = None
    stage_started_ns: int | None = None  # the watermark of the stage's output
    failed_attempts: int = 0  # consecutive failed attempts of the current stage
    # The gate last passed and how (routing reads it); a person's note for the next stage.
    gate: GateName | None = None
    gate_action: Literal["approve", "reject", "reply"] | None = None
    person_note: str | None = None
