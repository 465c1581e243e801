"""The SQLite checkpointer's durability settings (the SIGKILL-resume tests prove them in use),
and a Postgres connection failure told without the URL's passwords."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.errors import CheckpointError
from orchestrator.graphs.checkpoints import run_checkpointer, scrubbed
from orchestrator.graphs.story import sqlite_checkpointer


async def test_the_checkpointer_commits_to_a_wal_synced_at_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "state" / "checkpoints.sqlite"
    path.parent.mkdir(mode=0o700)
    async with sqlite_checkpointer(path) as saver:
        async with saver.conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone()) == ("wal",)
        async with saver.conn.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone()) == (1,)  # NORMAL: no fsync per commit
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


SECRET = "Sekrit99"


def test_a_reason_is_told_without_the_urls_passwords() -> None:
    url = f"postgresql://u:{SECRET}%2Fx@h/db?sslmode=require&password={SECRET}2&sslpassword=pw3"
    reason = f'bad: "{SECRET}/x" "{SECRET}%2Fx" "{SECRET}2" "pw3" for user "u" at "h": require'
    assert scrubbed(reason, url) == 'bad: "***" "***" "***" "***" for user "u" at "h": require'


async def test_a_connection_failure_quoting_the_url_shows_no_password() -> None:
    pytest.importorskip("psycopg")
    # libpq quotes an option value it refuses: here the password, as a bad sslmode.
    url = f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslmode={SECRET}"
    with pytest.raises(CheckpointError) as failed:
        async with run_checkpointer(url, Path("unused.sqlite"), "epic"):
            pytest.fail("connected")
    message = str(failed.value)
    assert message.startswith("cannot reach the Postgres checkpointer at postgresql://127.0.0.1:1/")
    assert "sslmode" in message and SECRET not in message
