"""A git merge driver for sprint-status.yaml: `python -I -S sprint_merge.py BASE OURS THEIRS`.

Parallel stories each move their own line of the same file; git sees adjacent edits as a
conflict and would send a Dev to resolve it. Here each status takes the furthest value of the
two sides, `last_updated` the later stamp, and everything else must agree; the result is
written to OURS (exit 0), or OURS is left as it is (exit 1: git reports the conflict).
Standard library only and run without `site`, so it starts in a few milliseconds; the status
order is defined here and imported by `sprint.py`. Linear in the file size, whatever its lines
hold (no pattern here can backtrack), and a file over `LIMIT` or not UTF-8 is left to git.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime

STORY_RANK = {
    "backlog": 0,
    "ready-for-dev": 1,
    "drafted": 1,  # legacy: read as ready-for-dev
    "in-progress": 2,
    "contexted": 2,  # legacy: read as in-progress
    "review": 3,
    "done": 4,
}
EPIC_RANK = {"backlog": 0, "in-progress": 1, "contexted": 1, "done": 2}
# The value runs to its last non-blank before `#` or the line end; `rest` is the blanks and the
# comment after it. Each unbounded quantifier is possessive: one pass per line, whatever it holds.
_VALUE = r"(?:[ \t]*+[^ \t#\r\n]++)*+"
_REST = r"[ \t]*+(?:#[^\r\n]*+)?+"
ENTRY = re.compile(
    rf"^(?P<indent>[ \t]++)(?P<key>[\w.-]++)[ \t]*+:[ \t]*+(?P<value>{_VALUE})"
    rf"(?P<rest>{_REST})(?P<eol>\r?\n?)$"
)
SECTION = re.compile(r"^development_status[ \t]*+:")
STAMP = re.compile(rf"^(last_updated[ \t]*+:[ \t]*+)(?P<value>{_VALUE})({_REST})(\r?\n?)$")
_EPIC = re.compile(r"epic-(\d++)")
_STORY = re.compile(r"(\d++)-\d++[a-z]?+-")  # a story key; group 1 is its epic number
LIMIT = 8 * 1024 * 1024  # bytes per side; real files are a few KB


def rank(key: str, value: str) -> int | None:
    """How far along `value` is for `key` (an epic or a story); None for an unknown value."""
    epic = key.startswith("epic-") and not key.endswith("retrospective")
    return (EPIC_RANK if epic else STORY_RANK).get(value.strip().strip("'\"").lower())


def entries(lines: list[str]) -> dict[int, tuple[str, str]]:
    """Line index -> (key, value) of the `development_status` entries."""
    found: dict[int, tuple[str, str]] = {}
    inside = False
    for index, line in enumerate(lines):
        if SECTION.match(line):
            inside = True
            continue
        if inside and line.strip() and not line[0].isspace() and not line.startswith("#"):
            inside = False
        match = ENTRY.match(line) if inside else None
        if match is not None:
            found[index] = (match["key"], match["value"].strip())
    return found


def _skeleton(lines: list[str], found: dict[int, tuple[str, str]]) -> list[str]:
    """The file with its entries (`found`) and stamp blanked: what both sides must agree on."""
    out = list(lines)
    for index, (key, _) in found.items():
        out[index] = f"{key}:"
    return [STAMP.sub(r"\1", line) if line.startswith("last_updated") else line for line in out]


def _later(a: str, b: str) -> str:
    def parse(value: str) -> datetime | None:
        try:
            return datetime.strptime(value.strip().strip("'\""), "%m-%d-%Y %H:%M")
        except ValueError:
            return None

    first, second = parse(a), parse(b)
    return b if first is not None and second is not None and second > first else a


def close_epics(lines: list[str]) -> None:
    """An epic whose stories are all done is done (each side alone saw only its own story)."""
    found = entries(lines)
    values = {key: value for key, value in found.values()}
    all_done: dict[str, bool] = {}  # epic number -> whether each of its stories is done
    for key, value in values.items():
        story = _STORY.match(key)
        if story is not None:
            done = rank(key, value) == STORY_RANK["done"]
            all_done[story[1]] = all_done.get(story[1], True) and done
    for index, (key, value) in found.items():
        number = _EPIC.fullmatch(key)
        if number is None or value == "done":
            continue
        if all_done.get(number[1], False):
            match = ENTRY.match(lines[index])
            assert match is not None
            lines[index] = f"{match['indent']}{key}: done{match['rest']}{match['eol']}"


def merge(ours: str, theirs: str) -> str | None:
    """The merged file, or None when the sides differ in more than statuses and the stamp."""
    mine, other = ours.splitlines(keepends=True), theirs.splitlines(keepends=True)
    mine_entries, other_entries = entries(mine), entries(other)
    if _skeleton(mine, mine_entries) != _skeleton(other, other_entries):
        return None
    merged = list(mine)
    theirs_values = {key: value for key, value in other_entries.values()}
    for index, (key, value) in mine_entries.items():
        their = theirs_values.get(key, value)
        if their == value:
            continue
        a, b = rank(key, value), rank(key, their)
        if a is None or b is None:
            return None
        if b > a:
            match = ENTRY.match(mine[index])
            assert match is not None
            merged[index] = f"{match['indent']}{key}: {their}{match['rest']}{match['eol']}"
    close_epics(merged)
    stamps = [STAMP.match(line) for line in other]
    their_stamp = next((m["value"] for m in stamps if m), None)
    for index, line in enumerate(merged):
        match = STAMP.match(line)
        if match and their_stamp is not None:
            merged[index] = STAMP.sub(
                lambda m: f"{m[1]}{_later(m['value'], their_stamp)}{m[3]}{m[4]}", line
            )
            break
    return "".join(merged)


def _read(path: str) -> str | None:
    """The file's text; None (said on stderr) when it is unreadable, over `LIMIT` or not UTF-8."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(LIMIT + 1)
        if len(data) > LIMIT:
            raise ValueError(f"over {LIMIT} bytes")
        return data.decode("utf-8")
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        print(f"sprint_merge.py: {path}: {exc}; left to git", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    """BASE OURS THEIRS, as git's `%O %A %B`; the merge goes to OURS."""
    if len(argv) != 3:
        print("usage: sprint_merge.py BASE OURS THEIRS", file=sys.stderr)
        return 2
    _, ours_path, theirs_path = argv
    ours, theirs = _read(ours_path), _read(theirs_path)
    if ours is None or theirs is None:
        return 1
    merged = merge(ours, theirs)
    if merged is None:
        return 1
    with open(ours_path, "w", encoding="utf-8", newline="") as handle:
        handle.write(merged)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
