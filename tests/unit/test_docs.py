"""The documents say what the program does: the epic.yaml reference against the models that
read it, and the README's board against the real board's rendering."""

from __future__ import annotations

import io
import re
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel
from rich.console import Console

from orchestrator.app.config import EpicConfig
from orchestrator.ui.board import LiveBoard
from tests.helpers import REPO

BOARD_START, BOARD_END = "<!-- board: rendered by tests/unit/test_docs.py -->\n```text\n", "```"


def keys_of(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every key a model (and the models inside it) reads."""
    seen = seen if seen is not None else set()
    found: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        found.add(name)
        for kind in typing.get_args(field.annotation) or (field.annotation,):
            for inner in typing.get_args(kind) or (kind,):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    seen.add(inner)
                    found |= keys_of(inner, seen)
    return found


def test_the_epic_yaml_reference_is_valid_and_names_every_key() -> None:
    text = (REPO / "docs" / "epic-yaml.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:  # every documented key is one the program reads, as written
        EpicConfig.model_validate(yaml.safe_load(block))
    missing = [key for key in sorted(keys_of(EpicConfig)) if not re.search(rf"\b{key}\s*:", text)]
    assert missing == []


def sample_board() -> str:
    """A story through a PO NO-GO and a QA FAIL, another failed at Dev, as a terminal shows it."""
    board = LiveBoard(["1.1", "1.2"], console=Console(file=io.StringIO()))
    board.close()
    steps = [
        ("1.1", "sm", 1, "drafted"), ("1.1", "po", 1, "rejected"), ("1.1", "sm", 2, "drafted"),
        ("1.1", "po", 2, "approved"), ("1.1", "dev", 1, "implemented"), ("1.1", "qa", 1, "FAIL"),
        ("1.1", "dev", 2, "implemented"), ("1.1", "qa", 2, "PASS"),
        ("1.2", "sm", 1, "drafted"), ("1.2", "po", 1, "approved"), ("1.2", "dev", 1, None),
    ]  # fmt: skip
    for story, stage, attempt, outcome in steps:
        board.event({"event": "stage-start", "story": story, "stage": stage, "attempt": attempt})
        usage = {"input": 9000, "output": 600, "models": ["claude-sonnet-4-5"], "usd": 0.04}
        board.event({
            "event": "stage-end", "story": story, "stage": stage, "outcome": outcome,
            "end": "done" if outcome else "stalled", "seconds": 95.0, "usage": usage,
            "log": ".bmad-orchestrator/logs/r1/bmad-dev-1-2.1.log",
            "screen": ["Do you want to run npm test?", "1. Yes  2. No"],
        })  # fmt: skip
    board.story("1.1", "done")
    console = Console(file=io.StringIO(), width=110, color_system=None)
    console.print(board.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def test_the_readme_shows_the_real_board() -> None:
    readme = (REPO / "README.md").read_text()
    start = readme.index(BOARD_START) + len(BOARD_START)
    shown = readme[start : readme.index(BOARD_END, start)]
    assert shown == sample_board(), f"README's board is stale; it renders as:\n{sample_board()}"


if __name__ == "__main__":  # print the board to paste into the README
    print(sample_board(), end="")
    assert Path(__file__).is_file()
