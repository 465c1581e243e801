"""Per CLI: its wire protocol, how it is pointed at the scripted server, the flags a story runs
with, and what it can show (an ask tool, a trust screen the orchestrator answers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.realcli import anthropic, gemini_api
from tests.realcli.clis import claude_env
from tests.realcli.model import Protocol_, Usage


@dataclass(frozen=True)
class Driver:
    """How the tests run one real CLI."""

    name: str
    protocol: Callable[[], Protocol_]
    env: Callable[[Path, str, Path], dict[str, str]]  # (home, server url, project) -> env
    flags: tuple[str, ...] = ()
    crash_flags: tuple[str, ...] = ()  # so the model's kill runs without a permission dialog
    asks: bool = True  # the CLI offers the model a question tool
    first_dialog: str | None = None  # the first-run screen the orchestrator answers
    recorded: Callable[[Usage], Usage] = lambda usage: usage  # billed -> what the CLI records
    submit_evidence: str = "hook"
    extra: dict[str, str] = field(default_factory=dict)


DRIVERS = {
    "claude": Driver(
        "claude",
        anthropic.Anthropic,
        lambda home, url, project: claude_env(home, url),
        flags=("--permission-mode", "acceptEdits"),
        crash_flags=("--allowedTools", "Bash"),
        first_dialog="workspace-trust",
    ),
    "gemini": Driver(
        "gemini",
        gemini_api.GeminiApi,
        gemini_api.configure,
        flags=("--approval-mode", "yolo", "--model", "gemini-2.5-pro"),  # a priced model
        recorded=gemini_api.as_recorded,
    ),
}
