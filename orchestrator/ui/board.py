"""Showing a run: a live board in a terminal, one plain line per event elsewhere (CI, pipes).

Both are a `Display`: the runner tells it about stories and stage events, and asks it for the
summary at the end; it never needs to know which one it has.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from orchestrator.agents.usage import Usage, UsageTotal
from orchestrator.app.runs import StoryReport
from orchestrator.stages import DOUBTS, SETBACKS, STAGES
from orchestrator.ui.terminal import shown


class Display(Protocol):
    """What the runner shows a run through."""

    def story(self, story: str, result: str) -> None:
        """A story's result (or that it is running)."""
        ...

    def event(self, event: dict[str, Any]) -> None:
        """A stage event from the story graph (`stage-start`, `nudge`, `stage-end`)."""
        ...

    def waiting(self, story: str, gate: str, question: str, answer: Sequence[str]) -> None:
        """A story waits for a person: the question and the commands that answer it."""
        ...

    def close(self) -> None:
        """The run is over: stop refreshing."""
        ...

    def summary(self, reports: Sequence[StoryReport]) -> None:
        """Print the end-of-run summary."""
        ...


@dataclass
class Cell:
    """One stage of one story on the board."""

    state: str = ""  # "", running, outcome text, or a failure reason
    attempt: int = 0
    started: float = 0.0
    seconds: float = 0.0
    ok: bool | None = None
    nudges: int = 0  # nudges typed into the running attempt
    earlier: list[tuple[str, str]] = field(default_factory=list)  # (text, style) of past rounds

    @property
    def style(self) -> str:
        """How the cell's last end is coloured: a setback (NO-GO, Blocked, FAIL) or a failed
        attempt red, a CONCERNS gate yellow, anything else green."""
        if not self.ok or self.state in SETBACKS:
            return "red"
        return "yellow" if self.state in DOUBTS else "green"


@dataclass
class Row:
    """One story on the board."""

    story: str
    cells: dict[str, Cell] = field(default_factory=lambda: {s: Cell() for s in STAGES})
    result: str = "waiting"
    attach: str = ""
    usage: list[Usage | None] = field(default_factory=list)  # of each finished attempt

    @property
    def spent(self) -> str:
        """The story's usage so far, as the board shows it."""
        return UsageTotal.of(self.usage).describe()


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class Board:
    """Keeps the rows; `PlainDisplay` and `LiveBoard` render them."""

    def __init__(self, stories: list[str], stages: Sequence[str] = STAGES) -> None:
        self.rows = {story: Row(story) for story in stories}
        self.stages = tuple(stages)  # the method's: BMad v6 has no PO column

    def story(self, story: str, result: str) -> None:
        """Show a story's result (or that it runs)."""
        self.rows[story].result = result
        self.rows[story].attach = ""

    def waiting(self, story: str, gate: str, question: str, answer: Sequence[str]) -> None:
        """Show that a story waits for a person, and how to answer."""
        row = self.rows[story]
        row.result = f"WAITING for a person ({gate})"
        row.attach = f"{question.splitlines()[0] if question else ''} -> {' | '.join(answer)}"

    def event(self, event: dict[str, Any]) -> None:
        """Show a stage event."""
        row = self.rows.get(event.get("story", ""))
        if row is None:
            return
        if event["event"] == "merge":
            row.result = f"integrate: {event.get('outcome')}"
            return
        cell = row.cells[event["stage"]]
        if event["event"] == "stage-start":
            if cell.state and cell.state != "running":  # a new round: the last one stays shown
                done = f"{cell.state} a{cell.attempt} {_elapsed(cell.seconds)}"
                cell.earlier.append((done, cell.style))
                cell.seconds = 0.0
            cell.state, cell.attempt, cell.ok = "running", event["attempt"], None
            cell.started, cell.nudges = time.monotonic(), 0
            row.result, row.attach = event["stage"], event.get("attach", "")
        elif event["event"] == "nudge":
            cell.nudges = event.get("count", cell.nudges + 1)
        elif event["event"] == "stage-end":
            usage = event.get("usage")
            row.usage.append(Usage.model_validate(usage) if usage else None)
            cell.seconds += event.get("seconds", 0.0)
            cell.ok = event.get("outcome") is not None
            cell.state = event.get("outcome") or event.get("end", "?")
            row.attach = _failure_text(event)


def _failure_text(event: dict[str, Any]) -> str:
    """A failed attempt's log and last screen lines ("" when it had an outcome)."""
    if event.get("outcome") is not None or not event.get("log"):
        return ""
    screen = " / ".join(event.get("screen") or []) or "(empty)"
    return f"{event['stage']} {event.get('end')}: log {event['log']}; last screen: {screen}"


def _merge_text(event: dict[str, Any]) -> str:
    outcome = event.get("outcome")
    if outcome == "merged":
        return f"{event.get('branch')} merged"
    if outcome == "conflict":
        return f"{event.get('branch')} conflicts in {', '.join(event.get('conflicts') or [])}"
    if outcome == "shared":
        return "Done"
    return f"{outcome}: {event.get('detail', '')}"


class PlainDisplay(Board):
    """One line per event, flushed: readable in CI logs and through pipes."""

    def __init__(
        self, stories: list[str], stages: Sequence[str] = STAGES, out: TextIO | None = None
    ) -> None:
        super().__init__(stories, stages)
        self.out = out or sys.stdout

    def _print(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {shown(text)}", file=self.out, flush=True)

    def story(self, story: str, result: str) -> None:
        """Show a story's result (or that it runs)."""
        super().story(story, result)
        self._print(f"story {story}: {result}")

    def waiting(self, story: str, gate: str, question: str, answer: Sequence[str]) -> None:
        """Show that a story waits for a person, and how to answer."""
        super().waiting(story, gate, question, answer)
        self._print(f"story {story}: WAITING for a person ({gate}): {question}")
        for command in answer:
            self._print(f"story {story}:   answer: {command}")

    def event(self, event: dict[str, Any]) -> None:
        """Show a stage event."""
        super().event(event)
        story, stage = event.get("story"), event.get("stage")
        if event["event"] == "stage-start":
            how = "adopted" if event.get("adopted") else "started"
            self._print(
                f"story {story}: {stage} attempt {event['attempt']} {how} in {event['session']}"
                f" (watch: {event.get('attach', '')})"
            )
        elif event["event"] == "nudge":
            why = "asked for a person" if event.get("reason") == "attention" else "stopped"
            self._print(
                f"story {story}: {stage} {why} without its output: nudge {event.get('count')}"
            )
        elif event["event"] == "stage-end":
            outcome = event.get("outcome") or f"{event.get('end')}: {event.get('detail', '')}"
            usage = event.get("usage")
            cost = UsageTotal.of([Usage.model_validate(usage) if usage else None]).describe()
            self._print(
                f"story {story}: {stage} -> {outcome} ({event.get('seconds', 0):.1f}s, {cost})"
            )
            if failed := _failure_text(event):
                self._print(f"story {story}:   {failed}")
        elif event["event"] == "merge":
            self._print(f"story {story}: integrate -> {_merge_text(event)}")

    def close(self) -> None:
        """Stop showing."""
        pass

    def summary(self, reports: Sequence[StoryReport]) -> None:
        """Print the end-of-run summary."""
        for r in reports:
            spent = _elapsed(sum(r.seconds.values()))
            cost = f", {r.usage.describe()}" if r.usage.attempts else ""
            reason = f" - {r.reason}" if r.reason else ""
            line = f"{r.story_id}: {r.result} ({spent}{cost}){reason}"
            print(shown(line), file=self.out, flush=True)


class LiveBoard(Board):
    """A rich live table of stories x stages, refreshed in place."""

    def __init__(self, stories: list[str], stages: Sequence[str] = STAGES, console: Any = None):
        from rich.console import Console
        from rich.live import Live

        super().__init__(stories, stages)
        self.console = console or Console()
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=2)
        self.live.start()

    def render(self) -> Any:
        """The board as a rich renderable (called on every refresh)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="bmad-orchestrator", expand=False)
        table.add_column("story")
        for stage in self.stages:
            table.add_column(stage.upper())
        table.add_column("spent")
        table.add_column("state")
        watching = []
        for row in self.rows.values():
            cells = []
            for stage in self.stages:
                cell = row.cells[stage]
                text = Text()
                for earlier, style in cell.earlier:  # FAIL a1 → Dev a2 → QA a2: rounds stay
                    text.append(earlier, style=style).append(" → ", style="dim")
                if cell.state == "running":
                    spent = cell.seconds + time.monotonic() - cell.started
                    nudged = f" n{cell.nudges}" if cell.nudges else ""
                    text.append(f"● a{cell.attempt}{nudged} {_elapsed(spent)}", style="yellow")
                elif cell.state:
                    text.append(f"{cell.state} {_elapsed(cell.seconds)}", style=cell.style)
                else:
                    text.append("·", style="dim")
                cells.append(text)
            style = "bold magenta" if row.result.startswith("WAITING") else ""
            table.add_row(row.story, *cells, row.spent, Text(shown(row.result), style=style))
            if row.attach:
                watching.append(shown(f"{row.story}: {row.attach}"))
        footer = Text("\n".join(watching) if watching else "", style="dim")
        return Group(table, footer)

    def close(self) -> None:
        """Stop showing."""
        self.live.stop()

    def summary(self, reports: Sequence[StoryReport]) -> None:
        """Print the end-of-run summary."""
        from rich.table import Table

        table = Table(title="summary")
        columns = ("story", "result", "time", "spent", "attempts", "revisions", "fix rounds")
        for column in (*columns, "reason"):
            table.add_column(column)
        for r in reports:
            table.add_row(
                r.story_id,
                r.result,
                _elapsed(sum(r.seconds.values())),
                r.usage.describe(),
                str(sum(r.attempts.values())),
                str(r.po_revisions),
                str(r.qa_fix_rounds),
                shown(r.reason or ""),
            )
        self.console.print(table)


def make_display(
    stories: list[str], *, stages: Sequence[str] = STAGES, live: bool | None = None
) -> Display:
    """A live board when stdout is a terminal (or `live`), plain lines otherwise."""
    if live is None:
        live = sys.stdout.isatty()
    return LiveBoard(stories, stages) if live else PlainDisplay(stories, stages)
