"""The watermark and baseline of a stage attempt, kept in the state dir while it runs.

A live session carries them as tmux options, which a reboot takes away with the server. Kept in
a file too, a resume can judge what a lost attempt left (an SM draft written just before the
crash) against the attempt's own starting point, and take finished work instead of running the
stage again: a rewrite of the same bytes would otherwise look like no output at all.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.files import StateDir, read_private, write_private

FOLDER = "run"


def _path(state: StateDir, story_id: str, stage: str) -> Path:
    return state.file(Path(FOLDER) / f"{story_id}.{stage}.attempt.json")


def remember(
    state: StateDir,
    story_id: str,
    stage: str,
    *,
    run_id: str,
    attempt: int,
    since_ns: int,
    baseline: dict[str, Any],
) -> None:
    """Record the attempt about to start."""
    record = {"run": run_id, "attempt": attempt, "since_ns": since_ns, "baseline": baseline}
    write_private(_path(state, story_id, stage), json.dumps(record))


def recall(
    state: StateDir, story_id: str, stage: str, run_id: str
) -> tuple[int, int, Mapping[str, Any]] | None:
    """(attempt, since_ns, baseline) of this run's attempt that never ended, if one was lost."""
    try:
        record = json.loads(read_private(_path(state, story_id, stage)))
        if record["run"] != run_id:
            return None
        return int(record["attempt"]), int(record["since_ns"]), dict(record["baseline"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget(state: StateDir, story_id: str, stage: str) -> None:
    """The attempt ended (whatever its end): nothing of it is lost."""
    with contextlib.suppress(OSError):
        _path(state, story_id, stage).unlink(missing_ok=True)
