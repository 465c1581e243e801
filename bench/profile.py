"""Where a profiled run's CPU went, by component (`python -m bench profile FILE`).

Reads py-spy's raw output (`bench scale --profile FILE`: one line per distinct stack, frames
outermost first, then the sample count) and charges each sample to the first component its
frames name, looking from the innermost frame out. Samples are active CPU: py-spy leaves idle
threads out by default.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# (component, what a frame's text contains), checked in this order for each frame.
COMPONENTS = (
    ("tmux: client calls (subprocess)", ("subprocess.py", "libtmux")),
    ("kill: /proc scans and waits", ("tmux/processes.py",)),
    ("checkpoints (sqlite)", ("aiosqlite", "checkpoint/sqlite", "sqlite3")),
    ("checkpoint serialisation", ("serde/", "jsonplus", "ormsgpack", "msgpack")),
    ("file watching (watchfiles)", ("watchfiles", "orchestrator/watch.py")),
    ("stage output checks (method)", ("orchestrator/methods/",)),
    ("usage records", ("orchestrator/agents/clis/", "nodes/accounting.py")),
    ("state models (pydantic)", ("pydantic",)),
    ("LangGraph engine", ("langgraph/",)),
    ("event log, state files", ("orchestrator/eventlog.py", "orchestrator/files.py")),
    ("tmux: sessions, spawn, screens", ("orchestrator/tmux/",)),
    ("board and runner", ("orchestrator/ui/", "orchestrator/app/")),
    ("asyncio loop and threads", ("asyncio/", "threading.py", "concurrent/futures")),
    ("imports", ("importlib", "<frozen")),
)


def summarise(raw: Path) -> list[tuple[str, int]]:
    """(component, samples), most first."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        component = next(
            (
                name
                for frame in reversed(frames)
                for name, needles in COMPONENTS
                if any(needle in frame for needle in needles)
            ),
            "other",
        )
        counts[component] += int(number)
    return counts.most_common()


def report(raw: Path) -> str:
    """The table, with shares of all samples."""
    rows = summarise(raw)
    total = sum(n for _, n in rows) or 1
    lines = [f"{total} samples"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in rows]
    return "\n".join(lines)
