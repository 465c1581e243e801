"""The board as a person sees it: colours of setbacks, rounds that stay shown, the method's own
columns, and where a failed attempt's log and last screen are. Rendered by rich, as in a
terminal (ANSI colours), and as plain lines."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from orchestrator.ui.board import LiveBoard, PlainDisplay

RED, GREEN, YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"


def start(stage: str, attempt: int) -> dict[str, Any]:
    return {"event": "stage-start", "story": "1.1", "stage": stage, "attempt": attempt,
            "session": f"bmad-{stage}-1-1", "attach": "tmux attach"}  # fmt: skip


def end(stage: str, outcome: str | None, **more: Any) -> dict[str, Any]:
    return {"event": "stage-end", "story": "1.1", "stage": stage, "outcome": outcome,
            "end": "done" if outcome else "stalled", "seconds": 1.0, **more}  # fmt: skip


def rendered(board: LiveBoard) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=250)
    console.print(board.render())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def board(stages: tuple[str, ...] = ("sm", "po", "dev", "qa")) -> LiveBoard:
    shown = LiveBoard(["1.1"], stages, console=Console(file=io.StringIO()))
    shown.close()  # rendered by hand below, not refreshed
    return shown


def test_setbacks_are_red_concerns_yellow_and_fix_rounds_stay_shown() -> None:
    shown = board()
    for event in (
        start("sm", 1), end("sm", "drafted"),
        start("po", 1), end("po", "rejected"),
        start("po", 2), end("po", "approved"),
        start("dev", 1), end("dev", "implemented"),
        start("qa", 1), end("qa", "FAIL"),
        start("dev", 2), end("dev", "implemented"),
        start("qa", 2), end("qa", "CONCERNS"),
    ):  # fmt: skip
        shown.event(event)
    out = rendered(shown)
    assert f"{GREEN}drafted" in out
    assert f"{RED}rejected a1" in out and f"{GREEN}approved" in out  # NO-GO, then GO
    assert f"{RED}FAIL a1" in out and f"{YELLOW}CONCERNS" in out  # FAIL → QA a2
    assert f"{GREEN}implemented a1" in out  # Dev's first round stays shown beside its second


def test_a_method_without_po_has_no_po_column() -> None:
    out = rendered(board(("sm", "dev", "qa")))
    assert "SM" in out and "DEV" in out and "QA" in out and "PO" not in out


def test_a_failed_attempt_says_where_its_log_and_last_screen_are() -> None:
    live = board()
    failed = end(
        "dev", None, log="/s/logs/r/bmad-dev-1-1.1.log", screen=["Do you trust?", "1. Yes"]
    )
    live.event(start("dev", 1))
    live.event(failed)
    out = rendered(live)
    assert f"{RED}stalled" in out
    assert "log /s/logs/r/bmad-dev-1-1.1.log; last screen: Do you trust? / 1. Yes" in out
    plain = io.StringIO()
    lines = PlainDisplay(["1.1"], out=plain)
    lines.event(start("dev", 1))
    lines.event(failed)
    assert "dev stalled: log /s/logs/r/bmad-dev-1-1.1.log; last screen:" in plain.getvalue()
