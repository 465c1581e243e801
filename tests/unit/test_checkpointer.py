"""The SQLite checkpointer's durability settings (the SIGKILL-resume tests prove them in use)."""

from __future__ import annotations

import stat
from pathlib import Path

from graphs.story import sqlite_checkpointer


async def test_the_checkpointer_commits_to_a_wal_synced_at_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "state" / "checkpoints.sqlite"
    path.parent.mkdir(mode=0o700)
    async with sqlite_checkpointer(path) as saver:
        async with saver.conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone()) == ("wal",)
        async with saver.conn.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone()) == (1,)  # NORMAL: no fsync per commit
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
