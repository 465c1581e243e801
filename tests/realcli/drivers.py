"""Per CLI: its wire protocol, how it is pointed at the scripted server, the flags a story runs
with, and what it can show (an ask tool, a trust screen the orchestrator answers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.agents.prices import ModelPrice
from tests.realcli import anthropic, chat, gemini_api, responses
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
    steers: bool = True  # a hook (or plugin) of the CLI's can continue a turn with a nudge
    first_dialog: str | None = None  # the first-run screen the orchestrator answers
    recorded: Callable[[Usage], Usage] = lambda usage: usage  # billed -> what the CLI records
    submit_evidence: str = "hook"
    priced: Callable[[Usage], float] | None = None  # the CLI's own dollars for billed usage
    # `pricing:` as a user gives it, for a model the shipped table does not know.
    pricing: dict[str, ModelPrice] = field(default_factory=dict)


DRIVERS = {
    "claude": Driver(
        "claude",
        anthropic.Anthropic,
        lambda home, url, project: claude_env(home, url),
        flags=("--permission-mode", "acceptEdits"),
        crash_flags=("--allowedTools", "Bash"),
        first_dialog="workspace-trust",
    ),
    "codex": Driver(
        "codex",
        responses.Responses,
        responses.configure,
        flags=("--dangerously-bypass-approvals-and-sandbox",),
        asks=False,  # request_user_input answers "unavailable in Default mode" by itself
        steers=False,  # `notify` runs after the turn: nudges are typed
        submit_evidence="screen",
        pricing={responses.MODEL: ModelPrice(input=1.0, output=8.0, cache_read=0.1)},
    ),
    "gemini": Driver(
        "gemini",
        gemini_api.GeminiApi,
        gemini_api.configure,
        flags=("--approval-mode", "yolo", "--model", "gemini-2.5-pro"),  # a priced model
        recorded=gemini_api.as_recorded,
    ),
    "opencode": Driver(
        "opencode",
        chat.ChatCompletions,
        chat.configure,
        # The plugin only signals a question: it is closed (Esc, once drawn), which ends the
        # turn, and the plugin's turn end takes the answer.
        recorded=chat.recorded,
        priced=chat.cost_usd,
    ),
}
