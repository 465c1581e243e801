"""The sprint-status merge driver: what it merges, what it leaves to git, and hostile input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.methods.bmad_v6 import sprint_merge
from orchestrator.methods.bmad_v6.sprint_merge import ENTRY, STAMP, close_epics, entries, merge

SPRINT = """\
# generated: 12-07-2026 10:00
# STATUS DEFINITIONS:
#   - backlog: Story only exists in epic file
#   - done: Story completed

generated: 12-07-2026 10:00
last_updated: 12-07-2026 10:00
project: demo
project_key: NOKEY

development_status:
  epic-1: in-progress
  1-1-user-authentication: backlog  # first
  1-2-account-management: backlog
  1-2a-account-recovery: backlog
  epic-1-retrospective: optional

  epic-2: backlog
  2-1-personality-system: backlog
  epic-2-retrospective: optional

  epic-3: backlog

action_items:
  - epic: 1
    action: "Add error-handling review to the code review checklist"
    status: open
"""


def side(moves: dict[str, str], text: str = SPRINT, stamp: str | None = None) -> str:
    """`text` with each key of `moves` set to its status, and `last_updated` to `stamp`."""
    lines = text.splitlines(keepends=True)
    left = dict(moves)
    for index, (key, _) in entries(lines).items():
        if (value := left.pop(key, None)) is not None:
            match = ENTRY.match(lines[index])
            assert match is not None
            lines[index] = f"{match['indent']}{key}: {value}{match['rest']}{match['eol']}"
    assert not left, left
    text = "".join(lines)
    if stamp is not None:
        text = text.replace("last_updated: 12-07-2026 10:00", f"last_updated: {stamp}")
    return text


def status(text: str) -> dict[str, str]:
    return {key: value for key, value in entries(text.splitlines(keepends=True)).values()}


def test_two_sides_moving_different_stories_merge() -> None:
    mine = {"1-1-user-authentication": "review"}
    other = {"2-1-personality-system": "in-progress", "epic-2": "in-progress"}
    merged = merge(side(mine), side(other))
    assert merged == side(mine | other)
    assert "  1-1-user-authentication: review  # first\n" in merged
    assert merge(side(other), side(mine)) == merged  # either side may be ours


def test_a_regression_is_not_taken() -> None:
    key = "1-2-account-management"
    done, back = side({key: "done"}), side({key: "ready-for-dev"})
    assert merge(done, back) == done
    assert merge(back, done) == done
    # Legacy names rank as their successors; an unknown status is left to git.
    legacy = side({key: "contexted"})
    assert merge(legacy, side({key: "drafted"})) == legacy
    assert merge(side({key: "drafted"}), legacy) == legacy
    assert merge(done, side({key: "blocked"})) is None
    assert merge(side({"epic-2": "in-progress"}), side({"epic-2": "review"})) is None  # no epic's


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("  epic-3: backlog\n", "  epic-3: backlog\n  3-1-new-story: backlog\n"),
        lambda t: t.replace("1-2-account-management", "1-2-account-settings"),
        lambda t: t.replace("# STATUS DEFINITIONS:", "# STATUSES:"),
        lambda t: t.replace("status: open", "status: done"),
        lambda t: t.replace("project: demo", "project: other"),
        lambda t: t.replace("\n\n  epic-2", "\n  epic-2"),
    ],
    ids=["story-added", "key-renamed", "comment", "action-item", "header", "blank-line"],
)
def test_sides_that_differ_in_more_than_statuses_are_left_to_git(
    change: Callable[[str], str],
) -> None:
    ours = side({"1-1-user-authentication": "done"})
    theirs = side({"1-2-account-management": "done"})
    assert change(theirs) != theirs
    assert merge(ours, change(theirs)) is None


def test_an_epic_whose_stories_are_all_done_is_closed() -> None:
    ours = side({"1-1-user-authentication": "done", "1-2a-account-recovery": "done"})
    theirs = side({"1-2-account-management": "done", "2-1-personality-system": "review"})
    merged = merge(ours, theirs)
    assert merged is not None
    assert "  epic-1: done\n" in merged  # 1-2a counts, the retrospective does not
    assert status(merged)["epic-2"] == "backlog"
    assert status(merged)["epic-3"] == "backlog"  # no stories: nothing to close
    assert status(closed(side({"2-1-personality-system": "'DONE'"})))["epic-2"] == "done"
    # An epic's number is matched whole: epic-1 has no say over 11-1, nor epic-11 over 1-1.
    eleven = SPRINT.replace("  epic-3: backlog\n", "  epic-11: backlog\n  11-1-other: STATUS\n")
    after = status(closed(eleven.replace("STATUS", "done")))
    assert (after["epic-1"], after["epic-11"]) == ("in-progress", "done")
    all_of_1 = ("1-1-user-authentication", "1-2-account-management", "1-2a-account-recovery")
    after = status(
        closed(side(dict.fromkeys(all_of_1, "done"), eleven.replace("STATUS", "review")))
    )
    assert (after["epic-1"], after["epic-11"]) == ("done", "backlog")


def closed(text: str) -> str:
    lines = text.splitlines(keepends=True)
    close_epics(lines)
    return "".join(lines)


def test_the_later_stamp_is_kept() -> None:
    early, late = "12-07-2026 11:00", "12-08-2026 09:30"
    for ours, theirs in ((early, late), (late, early)):
        merged = merge(
            side({}, stamp=ours), side({"2-1-personality-system": "review"}, stamp=theirs)
        )
        assert merged == side({"2-1-personality-system": "review"}, stamp=late)
    quoted = merge(side({}, stamp=f'"{early}"  # when'), side({}, stamp=f'"{late}"  # when'))
    assert quoted == side({}, stamp=f'"{late}"  # when')
    assert merge(side({}, stamp="soon"), side({}, stamp=late)) == side({}, stamp="soon")
    assert merge(side({}, stamp=early), side({}, stamp="soon")) == side({}, stamp=early)


def test_crlf_comments_and_a_missing_last_eol_are_kept() -> None:
    crlf = SPRINT.replace("\n", "\r\n").rstrip("\r\n")
    ours = side({"1-1-user-authentication": "done"}, crlf)
    theirs = side({"1-2-account-management": "review"}, crlf)
    merged = merge(ours, theirs)
    assert merged is not None
    assert merged.count("\r\n") == crlf.count("\r\n") and "\n" not in merged.replace("\r\n", "")
    assert "  1-1-user-authentication: done  # first\r\n" in merged
    assert "  1-2-account-management: review\r\n" in merged
    assert merged.startswith("# generated: 12-07-2026 10:00\r\n# STATUS DEFINITIONS:\r\n")
    assert merged.endswith("    status: open")


def test_lines_of_hostile_whitespace_parse_and_merge() -> None:
    blanks = " \t" * 50_000
    match = ENTRY.match(f"\t  1-1-a{blanks}:{blanks}in-progress{blanks}x{blanks}# c {blanks}#\r\n")
    assert match is not None
    assert match.group("indent", "key", "eol") == ("\t  ", "1-1-a", "\r\n")
    assert match["value"] == f"in-progress{blanks}x"
    assert match["rest"] == f"{blanks}# c {blanks}#"
    match = ENTRY.match(f"  1-1-a: done{blanks}\n")
    assert match is not None and (match["value"], match["rest"]) == ("done", blanks)
    assert ENTRY.match(f"  1-1-a{blanks}x: done\n") is None
    assert ENTRY.match(f"  1-1-a: done{blanks}x\rmore\n") is None
    stamp = STAMP.match(f"last_updated:{blanks}12-07-2026{blanks}10:00{blanks}# at {'#' * 9}\n")
    assert stamp is not None
    assert stamp["value"] == f"12-07-2026{blanks}10:00" and stamp[3] == f"{blanks}# at {'#' * 9}"
    # Both sides carrying such lines still merge, keeping them as they are.
    text = SPRINT.replace(
        "  epic-3: backlog\n",
        f"  epic-3: backlog{blanks}# {'#' * 1000}\n  3-1-odd:{blanks}review{blanks}\n"
        f"  3-2-odder: backlog{blanks}later\n",
    ).replace("last_updated: 12-07-2026 10:00", f"last_updated: 12-07-2026{blanks}10:00")
    ours = side({"3-1-odd": "done", "1-1-user-authentication": "done"}, text)
    theirs = side({"1-1-user-authentication": "review"}, text)
    theirs = theirs.replace(f"12-07-2026{blanks}10:00", f"12-07-2026{blanks}11:00")
    merged = merge(ours, theirs)
    assert merged == ours.replace(f"12-07-2026{blanks}10:00", f"12-07-2026{blanks}11:00")
    assert f"  3-1-odd: done{blanks}\n" in merged  # epic-3 stays: 3-2's value is no status
    assert merge(theirs, ours) == merged


def hostile_sides(size: int) -> tuple[str, str, str]:
    """(ours, theirs, expected merge) of about `size` bytes: many epics, then hostile lines."""
    blanks = " \t" * (size // 16)
    hostile = (
        f"  9000-1-blanks: backlog{blanks}x  # then a word\n"
        f"  9000-2-words: {'word ' * (size // 40)}end\n"
        f"  9000-3-hashes: backlog # {'#' * (size // 16)}\n"
        f"{' ' * (size // 32)}9000-4-indent: backlog{' # ' * (size // 48)}\n"
    )
    ours: list[str] = []
    theirs: list[str] = []
    expected: list[str] = []
    epic = written = 0
    while written + len(hostile) < size:
        epic += 1
        keys = [f"  {epic}-{story}-some-story-slug" for story in range(1, 11)]
        closes = epic % 2 == 0
        ours.append(f"  epic-{epic}: in-progress\n")
        theirs.append(f"  epic-{epic}: in-progress\n")
        expected.append(f"  epic-{epic}: {'done' if closes else 'in-progress'}\n")
        for n, key in enumerate(keys):
            mine, other = ("done", "review") if n % 2 else ("backlog", "done")
            other = other if closes else "ready-for-dev"
            ours.append(f"{key}: {mine}{blanks[: n * 3]}\n")
            theirs.append(f"{key}: {other}{blanks[: n * 3]}\n")
            expected.append(f"{key}: {'done' if mine == 'done' else other}{blanks[: n * 3]}\n")
        for lines in (ours, theirs, expected):
            lines.append(f"  epic-{epic}-retrospective: optional\n\n")
        written += sum(map(len, ours[-12:]))
    head, tail = SPRINT.split("  epic-1: in-progress\n")[0], "\naction_items: []\n"
    early, late = (head.replace("10:00\nproject", f"{t}\nproject") for t in ("11:00", "12:30"))
    return (
        early + "".join(ours) + hostile + tail,
        late + "".join(theirs) + hostile + tail,
        late + "".join(expected) + hostile + tail,
    )


def test_a_megabyte_of_hostile_lines_merges_right() -> None:
    ours, theirs, expected = hostile_sides(1 << 20)
    assert len(ours) > 1_000_000
    assert merge(ours, theirs) == expected
    assert merge(theirs, ours) == expected


def run_driver(tmp_path: Path, ours: bytes, theirs: bytes) -> tuple[int, bytes, str]:
    """The driver run as git runs it: (exit code, OURS afterwards, stderr)."""
    paths = [tmp_path / name for name in ("base", "ours", "theirs")]
    for path, data in zip(paths, (ours, ours, theirs), strict=True):
        path.write_bytes(data)
    command = [sys.executable, "-I", "-S", sprint_merge.__file__, *map(str, paths)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return done.returncode, paths[1].read_bytes(), done.stderr


def test_the_driver_writes_the_merge_to_ours(tmp_path: Path) -> None:
    crlf = SPRINT.replace("\n", "\r\n")
    ours = side({"1-1-user-authentication": "done"}, crlf)
    theirs = side({"1-2-account-management": "review"}, crlf)
    expected = side({"1-1-user-authentication": "done", "1-2-account-management": "review"}, crlf)
    assert run_driver(tmp_path, ours.encode(), theirs.encode()) == (0, expected.encode(), "")


@pytest.mark.parametrize("which", ["ours", "theirs"])
def test_the_driver_leaves_a_file_that_is_not_utf8_to_git(tmp_path: Path, which: str) -> None:
    good = side({"1-1-user-authentication": "done"}).encode()
    bad = side({"1-2-account-management": "done"}).encode().replace(b"demo", b"d\xe9mo")
    ours, theirs = (bad, good) if which == "ours" else (good, bad)
    code, after, stderr = run_driver(tmp_path, ours, theirs)
    assert code == 1 and after == ours
    assert "left to git" in stderr and "Traceback" not in stderr


def test_the_driver_leaves_a_file_over_the_limit_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.write_text(side({"1-1-user-authentication": "done"}))
    theirs.write_text(side({"1-2-account-management": "in-progress"}))
    before = ours.read_bytes()
    arguments = [str(tmp_path / "base"), str(ours), str(theirs)]
    monkeypatch.setattr(sprint_merge, "LIMIT", len(theirs.read_bytes()) - 1)
    assert sprint_merge.main(arguments) == 1
    assert ours.read_bytes() == before and "left to git" in capsys.readouterr().err
    monkeypatch.setattr(sprint_merge, "LIMIT", len(theirs.read_bytes()))
    assert sprint_merge.main(arguments) == 0
    assert status(ours.read_text())["1-2-account-management"] == "in-progress"
