"""Usage records as each agent CLI writes them, for the simulated agent to write (`--usage`).

The shapes follow the CLIs' own formats (see `orchestrator/agents/clis/`): Claude's transcript
entries (each streamed message written twice), Codex's rollout with cumulative `token_count`
totals whose input includes the cached tokens, Gemini's chat recording (a message appended again
once its tokens are in), Copilot's `session.shutdown` model metrics, and opencode's
`message.updated` events (the tokens arriving with the last update).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_MODELS = {"claude": "claude-sonnet-4-5-20250929", "codex": "gpt-5-codex"}


@dataclass
class Tokens:
    """One turn's usage, as `--usage IN:OUT:CACHE_READ:CACHE_WRITE[:MODEL]` gives it."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    model: str

    @classmethod
    def parse(cls, spec: str, like: str) -> Tokens:
        """The spec; the model defaults to one the CLI would run."""
        parts = spec.split(":", 4)
        fresh, output, read, write = (int(part) for part in parts[:4])
        model = parts[4] if len(parts) > 4 else DEFAULT_MODELS.get(like, "gemini-2.5-pro")
        return cls(fresh, output, read, write, model)


def now_iso() -> str:
    """The time as the CLIs write it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def append(path: Path, *records: dict[str, Any]) -> None:
    """Append JSON lines, making the folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def data_home(variable: str, default: str) -> Path:
    """A CLI's data folder: its own variable, else `default` under HOME."""
    return Path(os.environ.get(variable) or Path.home() / default)


def claude(cwd: Path, session_id: str, turn: int, tokens: Tokens) -> Path:
    """One assistant message in the session's transcript."""
    folder = re.sub(r"[^A-Za-z0-9]", "-", str(cwd))
    path = data_home("CLAUDE_CONFIG_DIR", ".claude") / "projects" / folder / f"{session_id}.jsonl"
    usage = {
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "cache_read_input_tokens": tokens.cache_read,
        "cache_creation_input_tokens": tokens.cache_write,
    }
    entry = {
        "type": "assistant",
        "sessionId": session_id,
        "requestId": f"req_{turn}",
        "timestamp": now_iso(),
        "message": {"id": f"msg_{turn}", "model": tokens.model, "usage": usage},
    }
    append(path, entry, entry)  # a streamed message is written more than once
    return path


def codex(cwd: Path, thread_id: str, turns: list[Tokens]) -> Path:
    """The rollout, with the session's totals after the last turn."""
    now = datetime.now()
    folder = data_home("CODEX_HOME", ".codex") / "sessions" / now.strftime("%Y/%m/%d")
    existing = sorted(folder.glob(f"rollout-*-{thread_id}.jsonl"))
    path = (
        existing[0] if existing else folder / f"rollout-{now:%Y-%m-%dT%H-%M-%S}-{thread_id}.jsonl"
    )
    if not existing:
        meta = {"id": thread_id, "timestamp": now_iso(), "cwd": str(cwd)}
        append(path, {"timestamp": now_iso(), "type": "session_meta", "payload": meta})
    total = {
        "input_tokens": sum(t.input + t.cache_read for t in turns),
        "cached_input_tokens": sum(t.cache_read for t in turns),
        "output_tokens": sum(t.output for t in turns),
        "reasoning_output_tokens": 0,
        "total_tokens": sum(t.input + t.cache_read + t.output for t in turns),
    }
    info = {"total_token_usage": total, "last_token_usage": total, "model_context_window": 272000}
    context = {"cwd": str(cwd), "model": turns[-1].model}
    append(
        path,
        {"timestamp": now_iso(), "type": "turn_context", "payload": context},
        {
            "timestamp": now_iso(),
            "type": "event_msg",
            "payload": {"type": "token_count", "info": info},
        },
    )
    return path


def gemini(cwd: Path, session_id: str, turn: int, tokens: Tokens) -> Path:
    """One model message in the chat recording, appended again once its tokens are in."""
    slug = re.sub(r"[^a-z0-9]", "-", cwd.name.lower())
    folder = data_home("GEMINI_CLI_HOME", "") / ".gemini" / "tmp" / slug / "chats"
    existing = sorted(folder.glob(f"session-*-{session_id[:8]}.jsonl"))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M")
    path = existing[0] if existing else folder / f"session-{stamp}-{session_id[:8]}.jsonl"
    if not existing:
        append(path, {"sessionId": session_id, "startTime": now_iso(), "lastUpdated": now_iso()})
    message = {"id": f"m{turn}", "timestamp": now_iso(), "type": "gemini", "model": tokens.model}
    counts = {
        "input": tokens.input + tokens.cache_read,
        "output": tokens.output,
        "cached": tokens.cache_read,
        "thoughts": 0,
        "tool": 0,
        "total": tokens.input + tokens.cache_read + tokens.output,
    }
    append(path, message, {**message, "tokens": counts})
    return path


def copilot_events(session_id: str) -> Path:
    """Copilot's event log of one session."""
    return data_home("COPILOT_HOME", ".copilot") / "session-state" / session_id / "events.jsonl"


def copilot_shutdown(session_id: str, turns: list[Tokens]) -> None:
    """The `session.shutdown` event with the session's model metrics."""
    metrics: dict[str, Any] = {}
    for tokens in turns:
        entry = metrics.setdefault(tokens.model, {"requests": {"count": 0}, "usage": {}})
        entry["requests"]["count"] += 1
        usage = entry["usage"]
        for key, value in (
            ("inputTokens", tokens.input),
            ("outputTokens", tokens.output),
            ("cacheReadTokens", tokens.cache_read),
            ("cacheWriteTokens", tokens.cache_write),
        ):
            usage[key] = usage.get(key, 0) + value
    data = {"shutdownType": "routine", "modelMetrics": metrics, "currentModel": turns[-1].model}
    event = {"type": "session.shutdown", "data": data, "id": str(uuid.uuid4())}
    append(copilot_events(session_id), {**event, "timestamp": now_iso(), "parentId": None})


def opencode(session_id: str, turn: int, tokens: Tokens) -> list[dict[str, Any]]:
    """The `message.updated` events of one assistant message: empty first, then with usage."""
    empty = {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    info = {
        "id": f"msg_{turn}",
        "sessionID": session_id,
        "role": "assistant",
        "modelID": tokens.model,
        "providerID": "anthropic",
        "cost": 0.0,
        "tokens": empty,
    }
    final = {
        **info,
        "cost": round((tokens.input * 3 + tokens.output * 15) / 1_000_000, 6),
        "tokens": {
            "input": tokens.input,
            "output": tokens.output,
            "reasoning": 0,
            "cache": {"read": tokens.cache_read, "write": tokens.cache_write},
        },
    }
    return [
        {"type": "message.updated", "properties": {"info": info}},
        {"type": "message.updated", "properties": {"info": final}},
    ]
