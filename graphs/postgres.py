"""The Postgres checkpointer, and the advisory locks that keep one writer per story.

`langgraph-checkpoint-postgres` shares one database between hosts but has no lock across
processes: two runs driving the same story would fork its history. Each story run therefore
holds a session-level advisory lock on its story (and a shared one on its epic) for its whole
life, on a connection of its own: Postgres releases it when the process dies, however it dies.
A URL is never shown whole (its password): `redact_url` is what every message prints.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from orchestrator.errors import CheckpointError, ConfigError
from orchestrator.redaction import redact_url

if TYPE_CHECKING:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

INSTALL_HINT = (
    "pip install 'bmad-orchestrator[postgres]' (psycopg and langgraph-checkpoint-postgres)"
)
_HOLDER = """
select a.application_name, a.client_addr::text, l.pid
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted and l.objsubid = 1
  and ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s::bigint
"""


async def _connect(url: str, purpose: str) -> Any:
    try:
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row
    except ImportError:
        raise ConfigError(f"checkpointer: a Postgres URL needs {INSTALL_HINT}") from None
    name = f"bmad-orchestrator {purpose} {socket.gethostname()} pid {os.getpid()}"
    try:
        return await AsyncConnection.connect(
            url,
            autocommit=True,  # setup() creates indexes concurrently, outside a transaction
            prepare_threshold=0,
            row_factory=dict_row,
            application_name=name[:63],
            connect_timeout=10,
        )
    except Exception as exc:  # psycopg.OperationalError and friends; the URL never printed
        reason = str(exc).replace(url, redact_url(url)).strip().splitlines()[0:1]
        raise CheckpointError(
            f"cannot reach the Postgres checkpointer at {redact_url(url)}: "
            f"{reason[0] if reason else type(exc).__name__}"
        ) from None


@contextlib.asynccontextmanager
async def postgres_checkpointer(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    """An async Postgres checkpointer on a connection of its own (tables made on first use)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from orchestrator.graphs.story import checkpoint_serializer

    conn = await _connect(url, "checkpoints")
    try:
        saver = AsyncPostgresSaver(conn, serde=checkpoint_serializer())
        await saver.setup()
        yield saver
    finally:
        await conn.close()


class StoryLocks:
    """Advisory locks of one run: shared on the epic, exclusive per story it drives."""

    def __init__(self, conn: Any, epic: str) -> None:
        self.conn = conn
        self.epic = epic

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, epic: str) -> AsyncIterator[StoryLocks]:
        """A lock connection for the run; every lock it holds goes with it."""
        conn = await _connect(url, "locks")
        try:
            locks = cls(conn, epic)
            async with conn.cursor() as cursor:
                await cursor.execute(
                    "select pg_advisory_lock_shared(hashtextextended(%s, 0))", (f"bmad:{epic}",)
                )
            yield locks
        finally:
            await conn.close()

    def key(self, story: str) -> str:
        """The lock's text: the epic and the story."""
        return f"bmad:{self.epic}:{story}"

    async def try_lock(self, story: str) -> str | None:
        """Take the story's lock: None when taken, else who holds it (a sentence)."""
        async with self.conn.cursor() as cursor:
            await cursor.execute(
                "select pg_try_advisory_lock(hashtextextended(%s, 0)) as ok, "
                "hashtextextended(%s, 0) as key",
                (self.key(story), self.key(story)),
            )
            row = await cursor.fetchone()
            if row["ok"]:
                return None
            await cursor.execute(_HOLDER, {"key": row["key"]})
            holder = await cursor.fetchone()
        if holder is None:
            return "another process (it has just let go: run again)"
        where = f" from {holder['client_addr']}" if holder["client_addr"] else ""
        return f"{holder['application_name'] or 'another process'}{where}"

    async def unlock(self, story: str) -> None:
        """Let the story's lock go."""
        async with self.conn.cursor() as cursor:
            await cursor.execute(
                "select pg_advisory_unlock(hashtextextended(%s, 0))", (self.key(story),)
            )
