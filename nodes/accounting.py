"""What an attempt cost, read after its session, and the run budget checked before one starts.

Usage is read from the CLI's own records once the session is killed (reading a file: it never
delays the stage); while it runs, the run's ledger can read it live for the run budget. A
record that cannot be found or read is `None`: unknown, never 0.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import UsageQuery
from orchestrator.agents.prices import priced
from orchestrator.agents.profiles import AgentProfile
from orchestrator.agents.usage import Usage
from orchestrator.blocking import FILES
from orchestrator.errors import DeadlineExceeded
from orchestrator.state import StoryContext
from orchestrator.tmux import AgentSession

USAGE_DEADLINE = 30.0  # seconds for a CLI's usage records to be read


def usage_query(session: AgentSession, cwd: Path) -> UsageQuery:
    """How the session's CLI records can be found."""
    turn_end: Any = None
    with contextlib.suppress(OSError, ValueError):
        turn_end = json.loads(session.turn_end_file.read_text())
    return UsageQuery(
        name=session.name,
        run_dir=session.exit_file.parent,
        session_id=str(session.meta.get("agent_session_id") or ""),
        cwd=cwd,
        started_ns=int(session.started_at.timestamp() * 1e9),
        turn_end=turn_end if isinstance(turn_end, dict) else None,
        env=dict(os.environ),
    )


def read_usage(
    profile: AgentProfile, session: AgentSession, cwd: Path, context: StoryContext
) -> Usage | None:
    """The session's usage from its CLI's records, priced; None when unknown (blocking)."""
    try:
        record = profile.support.read_usage(usage_query(session, cwd))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record is None:
        return None
    return priced(record.per_model, record.usd, context.prices(), source=record.source)


async def attempt_usage(
    profile: AgentProfile, session: AgentSession, cwd: Path, context: StoryContext
) -> Usage | None:
    """`read_usage` on the files pool: records that do not come back in time are unknown (a
    transcript on a hung network mount never holds up the story)."""
    try:
        return await FILES.run(read_usage, profile, session, cwd, context, deadline=USAGE_DEADLINE)
    except DeadlineExceeded:
        return None


def live_reader(
    profile: AgentProfile, session: AgentSession, cwd: Path, context: StoryContext
) -> Callable[[], Usage | None]:
    """Reads the running session's usage so far (for the run budget)."""
    return lambda: read_usage(profile, session, cwd, context)


def run_budget_stop(context: StoryContext) -> str | None:
    """Why no new stage may start (the run's budget is spent), or None (blocking)."""
    if context.run_budget is None:
        return None
    reason = context.run_budget.exceeded_by(context.ledger().total())
    return f"run budget reached: {reason}" if reason else None


async def budget_stop(context: StoryContext) -> str | None:
    """`run_budget_stop` on the files pool; live usage that cannot be read in time counts as
    unknown (nothing), as any unknown usage does."""
    try:
        return await FILES.run(run_budget_stop, context, deadline=USAGE_DEADLINE)
    except DeadlineExceeded:
        return None
