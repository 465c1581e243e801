"""`status`: where each story of an epic stands, read from its files (and worktrees), with the
questions waiting for a person; a table, or JSON for scripts."""

from __future__ import annotations

import json
import sys

from orchestrator.app import people
from orchestrator.app.config import EpicConfig
from orchestrator.app.isolation import story_standing
from orchestrator.app.runlock import live_holder
from orchestrator.git.worktrees import WORKTREES_DIR
from orchestrator.methods import get_method


def show_status(config: EpicConfig, *, as_json: bool) -> None:
    """Print the epic's stories as they stand."""
    method = get_method(config.method)
    trees = None
    if (config.state_dir / WORKTREES_DIR).is_dir():  # the stories' truth is in worktrees
        trees = config.story_context("status", isolation="worktree").worktrees()
    rows = [
        story_standing(method.open, trees, story_id, config.project)
        for story_id in config.story_ids
    ]
    waiting = people.open_questions(config.state_dir, str(config.source), config.story_ids)
    if as_json:
        listed = [
            {
                **row.as_json(),
                "waiting": (w := waiting[row.story])
                and {**w.model_dump(mode="json"), "answer": w.commands()},
            }
            for row in rows
        ]
        print(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    from orchestrator.ui.terminal import shown

    holder = live_holder(config.state_dir)
    title = f"{config.source} ({holder.describe()} is running)" if holder else str(config.source)
    table = Table(title=title)
    for column in ("story", "file", "status", "state", "gate", "start"):
        table.add_column(column)
    for row in rows:
        gate = f"{row.gate} ({row.gate_file})" if row.gate else ""
        start = row.start or f"not started: {row.reason}"
        if (asked := waiting[row.story]) is not None:
            start = f"waiting for a person ({asked.gate}): {asked.commands()[0]}"
        cells = (row.story, row.file or "", row.status_raw or "", row.state or "", gate, start)
        table.add_row(*map(shown, cells))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
