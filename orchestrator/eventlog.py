"""Append-only JSON-lines log of every runtime operation.

Always on, because the first question after an unattended night is "what happened, and when".
One `os.write` per event keeps lines whole when several sessions log at once.
"""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.files import StateDir, append_private, read_private

EVENTS_FILE = "events.jsonl"


class EventLog:
    """Writes `{"ts": ..., "event": ..., **fields}` lines to `events.jsonl` in the state dir.

    Without a state dir (read-only commands run from any folder) events are dropped.
    """

    def __init__(self, state: StateDir | None) -> None:
        self.state = state
        self.path = state.root / EVENTS_FILE if state is not None else None

    def write(self, event: str, **fields: Any) -> None:
        """Append one event (dropped without a state dir)."""
        if self.state is None or self.path is None:
            return
        record = {"ts": round(time.time(), 6), "event": event, **fields}
        self.state.prepare()
        append_private(self.path, json.dumps(record, default=str, ensure_ascii=False) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All events so far (for tests and reports)."""
        if self.path is None:
            return []
        try:
            lines = read_private(self.path).splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]
