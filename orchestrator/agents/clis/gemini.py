"""Gemini CLI: `-i PROMPT` (stays interactive), `--session-id`, hooks through a system layer.

Gemini has no `--settings` flag; `GEMINI_CLI_SYSTEM_SETTINGS_PATH` points its highest settings
layer at a file for the one process. The orchestrator writes that file with its hooks, merged
into the system settings the user already has, so hook arrays from every layer still run.
Gemini runs no hook at all (and ignores `--approval-mode yolo`) in a folder it does not trust,
and answering its trust screen restarts it; so the session's folder is trusted for that one
process with `GEMINI_CLI_TRUST_WORKSPACE=true`, as answering would, without writing the user's
trusted-folders file. Hooks: `AfterAgent` ends a turn; `Notification` (ToolPermission) asks
for a person. A hook's stdout is parsed as its verdict, so ours print `{}`.

Usage: the chat recording (`~/.gemini/tmp/<project>/chats/session-<time>-<id8>.jsonl`, its path
also given to hooks as `transcript_path`). A message is appended again on every update, so the
last line per id counts, `$rewindTo` drops messages and `$set` replaces them. `input` includes
the cached tokens.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
    ATTENTION_HOOK,
    TURN_END_HOOK,
    CliSpec,
    Dialog,
    Launch,
    LaunchSpec,
    UsageQuery,
    UsageRecord,
    home,
    json_lines,
    number,
)
from orchestrator.agents.usage import ModelTokens

SYSTEM_SETTINGS = "/etc/gemini-cli/settings.json"


def hook_settings(base: dict[str, Any]) -> dict[str, Any]:
    """`base` (the user's system settings) with our hooks added to its hook arrays."""

    def entry(line: str) -> dict[str, object]:
        return {
            "hooks": [{"type": "command", "command": f"{line}; printf '{{}}'", "timeout": 10000}]
        }

    settings = dict(base)
    hooks = dict(settings["hooks"]) if isinstance(settings.get("hooks"), dict) else {}
    for event, line in (("AfterAgent", TURN_END_HOOK), ("Notification", ATTENTION_HOOK)):
        existing = hooks.get(event)
        kept: list[Any] = existing if isinstance(existing, list) else []
        hooks[event] = [*kept, entry(line)]
    settings["hooks"] = hooks
    return settings


def _system_settings() -> dict[str, Any]:
    path = os.environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH") or SYSTEM_SETTINGS
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def chat_file(query: UsageQuery) -> Path | None:
    """The session's chat recording: the hook's `transcript_path`, or found by session id."""
    hinted = (query.turn_end or {}).get("transcript_path")
    if isinstance(hinted, str) and hinted and Path(hinted).is_file():
        return Path(hinted)
    root = home(query.env, "GEMINI_CLI_HOME", "") / ".gemini" / "tmp"
    for path in sorted(root.glob(f"*/chats/session-*-{query.session_id[:8]}.jsonl")):
        first = next(json_lines(path), {})
        if first.get("sessionId") == query.session_id:
            return path
    return None


def messages(path: Path) -> list[dict[str, Any]]:
    """The conversation as Gemini loads it: the last version of each message, rewinds applied."""
    order: list[str] = []
    latest: dict[str, dict[str, Any]] = {}
    for record in json_lines(path):
        if "$rewindTo" in record:
            target = str(record["$rewindTo"])
            if target in order:
                for gone in order[order.index(target) :]:
                    latest.pop(gone, None)
                order = order[: order.index(target)]
        elif isinstance(record.get("$set"), dict) and "messages" in record["$set"]:
            replaced = [m for m in record["$set"]["messages"] if isinstance(m, dict)]
            order = [str(m.get("id")) for m in replaced]
            latest = {str(m.get("id")): m for m in replaced}
        elif "id" in record and "type" in record:
            key = str(record["id"])
            if key not in latest:
                order.append(key)
            latest[key] = record
    return [latest[key] for key in order if key in latest]


class Gemini:
    """Gemini CLI's hooks and usage."""

    name = "gemini"

    def launch(self, spec: LaunchSpec) -> Launch:
        """The hooks file as the system layer, the folder trusted, the session id."""
        settings = spec.run_dir / f"{spec.name}.gemini-settings.json"
        return Launch(
            args=["--session-id", spec.session_id],
            env={
                "GEMINI_CLI_SYSTEM_SETTINGS_PATH": str(settings),
                "GEMINI_CLI_TRUST_WORKSPACE": "true",
            },
            files={settings: json.dumps(hook_settings(_system_settings()), indent=1)},
        )

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """Not yet."""
        return None

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """Tokens per model of the recorded conversation."""
        path = chat_file(query)
        if path is None:
            return None
        per_model: dict[str, ModelTokens] = {}
        for message in messages(path):
            tokens = message.get("tokens")
            if message.get("type") != "gemini" or not isinstance(tokens, dict):
                continue
            cached = number(tokens.get("cached"))
            per_model.setdefault(str(message.get("model") or "unknown"), ModelTokens()).add(
                ModelTokens(
                    input=max(0, number(tokens.get("input")) - cached) + number(tokens.get("tool")),
                    output=number(tokens.get("output")) + number(tokens.get("thoughts")),
                    cache_read=cached,
                )
            )
        return UsageRecord(per_model, source=str(path))


# Idle: the placeholder; typing replaces it with the text after the input box's `>`.
READY = re.compile(r"Type your message|^\s*[│|]?\s*>\s")
DIALOGS = (
    # Only shown when trust is left to the screen; answering it restarts Gemini.
    Dialog("folder-trust", re.compile(r"Do you trust the files in this folder"), ("Enter",)),
)

SPEC = CliSpec("gemini", "gemini", Gemini(), ready=READY, dialogs=DIALOGS, prompt_flag=("-i",))
