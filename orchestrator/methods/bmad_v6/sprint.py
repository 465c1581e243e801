"""`sprint-status.yaml`: which story key a story id names, and status moves that never go back.

The file is written by sprint-planning with comments (its STATUS DEFINITIONS) that every BMad
workflow is told to keep, so it is edited line by line, never re-dumped. Story keys are
`N-M-kebab-title` (6.11: `^(\\d+)-(\\d+)([a-z]?)-.+`); story ids in epic.yaml may be the whole
key, `N-M` or `N.M`. Statuses only move forward (`backlog -> ready-for-dev -> in-progress ->
review -> done`; epics `backlog -> in-progress -> done`), except the one move back code-review
itself makes: `review -> in-progress` when findings are left open.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from orchestrator.errors import YamlFileError
from orchestrator.files import write_atomic
from orchestrator.methods.bmad_v6.sprint_merge import ENTRY, STAMP, entries, rank
from orchestrator.yamlfile import load_yaml

_KEY = re.compile(r"^(\d+)-(\d+)([a-z]?)(?:-.+)?$")
_ID = re.compile(r"^(\d+)[.-](\d+)([a-z]?)(?:-.+)?$")  # N.M, N-M, or a key of other words
_LOCK = threading.Lock()  # moves from parallel stories of one run: one read-modify-write at once


class SprintStatusError(ValueError):
    """The sprint-status file cannot be read as one."""


@dataclass(frozen=True)
class SprintStatus:
    """The ordered `development_status` entries of a sprint-status file."""

    entries: dict[str, str]

    def story_ids(self) -> list[str]:
        """The stories it tracks as `N.M` ids, in the file's order (epics and retrospectives
        are not stories)."""
        return [f"{m[1]}.{m[2]}{m[3]}" for key in self.entries if (m := _KEY.match(key))]

    def story_key(self, story_id: str) -> str | None:
        """The key `story_id` names: the key itself, or the first `N-M-...` key of its numbers."""
        if story_id in self.entries:
            return story_id
        wanted = _ID.match(story_id.strip())
        if wanted is None:
            return None
        for key in self.entries:
            match = _KEY.match(key)
            if match and match.groups() == wanted.groups():
                return key
        return None

    def epic_of(self, key: str) -> str | None:
        """`epic-N` for story key `N-M-...`, if the file has that epic."""
        match = _KEY.match(key)
        epic = f"epic-{match[1]}" if match else None
        return epic if epic in self.entries else None

    def epic_stories(self, epic: str) -> list[str]:
        """The story keys of `epic-N`, in file order."""
        number = epic.removeprefix("epic-")
        return [
            key
            for key in self.entries
            if (match := _KEY.match(key)) is not None and match[1] == number
        ]


def read_sprint(path: Path) -> SprintStatus:
    """Parse the file; raises `SprintStatusError` (or OSError when it cannot be read)."""
    try:
        data = load_yaml(path)
    except YamlFileError as exc:
        raise SprintStatusError(str(exc)) from None
    status = data.get("development_status") if isinstance(data, dict) else None
    if not isinstance(status, dict):
        raise SprintStatusError(f"{path}: no development_status mapping")
    return SprintStatus({str(k): str(v).strip() for k, v in status.items()})


def move(path: Path, key: str, value: str, *, back_from: str | None = None) -> bool:
    """Set `key` to `value` if that is forward (or the one allowed move back from `back_from`).

    Returns whether the file changed. Comments, order and line endings are kept; `last_updated`
    is refreshed when the file has it. Written atomically.
    """
    with _LOCK:
        text = path.read_bytes().decode("utf-8")  # CRLF files stay CRLF
        lines = text.splitlines(keepends=True)
        for index, (found, _) in entries(lines).items():
            if found != key:
                continue
            match = ENTRY.match(lines[index])
            assert match is not None
            current = match["value"].strip().strip("'\"")
            if current == value:
                return False
            old, new = rank(key, current), rank(key, value)
            allowed = back_from is not None and current == back_from
            if not allowed and old is not None and new is not None and new < old:
                return False
            lines[index] = f"{match['indent']}{key}: {value}{match['rest']}{match['eol'] or ''}"
            break
        else:
            return False
        stamp = datetime.now().strftime("%m-%d-%Y %H:%M")
        for index, line in enumerate(lines):
            dated = STAMP.match(line)
            if dated is not None:
                quote = '"' if dated["value"].startswith('"') else ""
                lines[index] = f"{dated[1]}{quote}{stamp}{quote}{dated[3]}{dated[4]}"
                break
        write_atomic(path, "".join(lines))
        return True
