"""The story graph's checkpointer for a run: a SQLite file of the state dir, or Postgres shared
between hosts together with the run's story locks (see `graphs.postgres`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from orchestrator.errors import CheckpointError
from orchestrator.graphs.postgres import StoryLocks, postgres_checkpointer
from orchestrator.graphs.story import sqlite_checkpointer

BLANK = "***"


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
    async with postgres_pair(url, epic) as pair:
        yield pair


@contextlib.asynccontextmanager
async def postgres_pair(url: str, epic: str) -> AsyncIterator[tuple[Any, StoryLocks]]:
    """The Postgres saver and the run's story locks. libpq's reasons quote the pieces of a URL it
    could not use, so a failure to connect is told without the URL's passwords."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(postgres_checkpointer(url))
            locks = await stack.enter_async_context(StoryLocks.open(url, epic))
        except CheckpointError as exc:
            raise CheckpointError(scrubbed(str(exc), url)) from None
        yield saver, locks


def scrubbed(text: str, url: str) -> str:
    """`text` with the URL's password and its `password` query values, raw or decoded, blanked
    (longest first, so a secret holding another goes whole)."""
    parts = urlsplit(url)  # readable: the reason's own `redact_url(url)` read it
    password = parts.netloc.rpartition("@")[0].partition(":")[2]
    secrets = {password, unquote(password)}
    for key, _, value in (piece.partition("=") for piece in parts.query.split("&")):
        if "password" in unquote(key).lower():
            secrets |= {value, unquote(value)}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, BLANK)
    return text
