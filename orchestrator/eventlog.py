"""Append-only JSON-lines log of every runtime operation.

The seed had a debug mode that logged spawns and kills; here it is always on, because the first
question after an unattended night is "what happened, and when". One `os.write` per event keeps
lines whole when several sessions log at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from orchestrator.files import append_private


class EventLog:
    """Writes `{"ts": ..., "event": ..., **fields}` lines to `path` (0600, in a 0700 folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 6), "event": event, **fields}
        append_private(self.path, json.dumps(record, default=str, ensure_ascii=False) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All events so far (for tests and reports)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]
