"""How long git's merge driver for sprint-status.yaml takes on big and hostile files.

    python -m bench.sprint_merge [--driver PATH] [--timeout SECONDS] [SIZE_KB ...]

For each size (default 42, 130, 262 and 1024 KB) writes two pairs of sides of one
sprint-status.yaml: a realistic one (many epics of many stories) and a hostile one (the same plus
lines with long runs of blanks, very long values and comments of many `#`). The sides move
different stories, so the merge takes statuses from both and closes epics. Each pair is merged by
running the driver as git does (`python -I -S DRIVER BASE OURS THEIRS`); prints the median wall
time of up to 5 runs (1 run when one takes over a second) and checks the merged file. `--driver`
times another copy of the script, e.g. an older one from `git show`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from orchestrator.methods.bmad_v6 import sprint_merge

HEADER = """\
# generated: 12-07-2026 10:00
# project: bench
# STATUS DEFINITIONS:
# ==================
# Epic Status:
#   - backlog: Epic not yet started
#   - in-progress: Epic actively being worked on
#   - done: All stories in epic completed
# Story Status:
#   - backlog: Story only exists in epic file
#   - ready-for-dev: Story file created, ready for development
#   - in-progress: Developer actively working
#   - review: Implementation complete, ready for review
#   - done: Story completed

generated: 12-07-2026 10:00
last_updated: {stamp}
project: bench
project_key: NOKEY
tracking_system: file-system
story_location: "{{project-root}}/_bmad-output/implementation-artifacts"

development_status:
"""
FOOTER = """
action_items:
  - epic: 1
    action: "Add error-handling review to the code review checklist"
    owner: "Charlie"
    status: open
"""
STORIES = 12  # per epic
WORDS = ("user", "account", "billing", "export", "search", "audit", "rate", "limit", "cache")


def _slug(epic: int, story: int) -> str:
    return "-".join(WORDS[(epic * 7 + story * 3 + n) % len(WORDS)] for n in range(3))


def _hostile(size: int) -> list[str]:
    """Entries that are the same on both sides and cost a backtracking regex the most."""
    quarter = max(size // 4, 100)
    blanks = " \t" * (quarter // 2)
    return [
        f"  9000-1-long-blanks: backlog{blanks}x  # blanks then a word\n",
        f"  9000-2-long-value: {'word ' * (quarter // 10)}end\n",
        f"  9000-3-many-hashes: backlog  # {'#' * (quarter // 4)}\n",
        f"  9000-4-blanks-hashes: backlog{' # ' * (quarter // 12)}\n",
        f"{' ' * (quarter // 8)}9000-5-long-indent: backlog\n",
    ]


def sides(size: int, hostile: bool) -> tuple[str, str, str]:
    """(ours, theirs, the expected merge) of about `size` bytes.

    Ours moves the odd stories of every epic to done, theirs the even ones (to review in every
    third epic), so each side alone closes no epic and the merge closes two in three.
    """
    extra = _hostile(size) if hostile else []
    budget = size - len(HEADER) - len(FOOTER) - sum(map(len, extra))
    ours: list[str] = []
    theirs: list[str] = []
    merged: list[str] = []
    epic = 0
    while budget > 0:
        epic += 1
        closes = epic % 3 != 0
        second = "done" if closes else "review"
        block = [(f"  epic-{epic}: ", "in-progress", "in-progress", "done" if closes else None)]
        for story in range(1, STORIES + 1):
            key = f"  {epic}-{story}-{_slug(epic, story)}: "
            if story % 2:
                block.append((key, "done", "backlog", "done"))
            else:
                block.append((key, "backlog", second, second))
        block.append((f"  epic-{epic}-retrospective: ", "optional", "optional", "optional"))
        for key, mine, other, result in block:
            ours.append(f"{key}{mine}\n")
            theirs.append(f"{key}{other}\n")
            merged.append(f"{key}{result or mine}\n")
        for lines in (ours, theirs, merged):
            lines.append("\n")
        budget -= sum(len(line) for line in ours[-STORIES - 3 :])
    header = HEADER.format(stamp="12-07-2026 11:00")
    other_header = HEADER.format(stamp="12-07-2026 12:30")
    return (
        header + "".join(ours + extra) + FOOTER,
        other_header + "".join(theirs + extra) + FOOTER,
        other_header + "".join(merged + extra) + FOOTER,
    )


def run(driver: Path, ours: str, theirs: str, timeout: float) -> tuple[float | None, str]:
    """One merge as git runs it: (wall seconds or None on timeout, the merged OURS)."""
    with tempfile.TemporaryDirectory() as folder:
        base, mine, other = (Path(folder) / name for name in ("base", "ours", "theirs"))
        base.write_text(ours)
        mine.write_text(ours)
        other.write_text(theirs)
        command = [sys.executable, "-I", "-S", str(driver), str(base), str(mine), str(other)]
        started = time.perf_counter()
        process = subprocess.Popen(command)
        timer = threading.Timer(timeout, process.kill)  # wait(timeout) polls every 50 ms
        timer.start()
        code = process.wait()
        elapsed = time.perf_counter() - started
        timer.cancel()
        if elapsed >= timeout:
            return None, ""
        assert code == 0, f"the driver exited {code}"
        return elapsed, mine.read_text()


def main(argv: list[str]) -> None:
    """Time the driver on each size, realistic then hostile."""
    parser = argparse.ArgumentParser(prog="python -m bench.sprint_merge")
    parser.add_argument("sizes", nargs="*", type=int, default=[42, 130, 262, 1024])
    parser.add_argument("--driver", type=Path, default=Path(sprint_merge.__file__))
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    print(f"driver {args.driver}")
    for kb in args.sizes:
        for hostile in (False, True):
            ours, theirs, expected = sides(kb * 1024, hostile)
            times: list[float] = []
            for _ in range(5):
                seconds, merged = run(args.driver, ours, theirs, args.timeout)
                if seconds is None:
                    break
                assert merged == expected, "the merge is not the expected file"
                times.append(seconds)
                if seconds > 1:
                    break
            kind = "hostile" if hostile else "realistic"
            size = f"{len(ours.encode()) / 1024:5.0f} KB {kind:>9}"
            if not times:
                print(f"{size}: over {args.timeout:.0f} s (stopped)")
            else:
                median = statistics.median(times) * 1000
                print(f"{size}: median {median:9.1f} ms over {len(times)} run(s)")


if __name__ == "__main__":
    main(sys.argv[1:])
