"""The story graph's checkpointer for a run: a SQLite file of the state dir, or Postgres shared
between hosts together with the run's story locks (see `graphs.postgres`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from graphs.postgres import StoryLocks, postgres_checkpointer
from graphs.story import sqlite_checkpointer


@contextlib.asynccontextmanager
async def run_checkpointer(
    url: str | None, sqlite_file: Path, epic: str
) -> AsyncIterator[tuple[Any, StoryLocks | None]]:
    """(saver, story locks): SQLite when `url` is None (one run per state dir needs no story
    locks: the run lock excludes the others), else Postgres and its advisory locks."""
    if url is None:
        async with sqlite_checkpointer(sqlite_file) as saver:
            yield saver, None
        return
    async with postgres_checkpointer(url) as saver, StoryLocks.open(url, epic) as locks:
        yield saver, locks
