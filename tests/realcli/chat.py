"""OpenAI Chat Completions (opencode): `POST /v1/chat/completions`, streamed as SSE.

opencode reaches a custom provider through its bundled `@ai-sdk/openai-compatible` (2.0.x in
opencode 1.18), which sends the whole conversation each time as `messages` (system, user,
assistant with `tool_calls`, `tool` results) and reads a stream of `chat.completion.chunk`
objects ending in `data: [DONE]`.

Usage, and what opencode makes of it (its `message.updated` `info.tokens`, which the
orchestrator's plugin records; `Session.getUsage` in opencode 1.18.33):

| `Usage` field | sent as | opencode records |
|---|---|---|
| input | part of `prompt_tokens` | `tokens.input = prompt_tokens - cached_tokens` |
| cache_read | `prompt_tokens_details.cached_tokens`, and in `prompt_tokens` | `tokens.cache.read` |
| cache_write | part of `prompt_tokens` | nothing of its own: counted in `tokens.input` |
| output | `completion_tokens` (`reasoning_tokens` 0) | `tokens.output` (`tokens.reasoning` 0) |

The openai-compatible package has no cache-write field (it reports `cacheWrite: undefined`, and
opencode only reads cache writes from Anthropic, Vertex, Bedrock or Venice metadata), so a
cache write can only be billed as input: `recorded()` gives what opencode will record for a
billed `Usage`, and `cost_usd()` the `info.cost` it computes from `COST`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.realcli.model import ANSWERS, Call, Reply, Turn, Usage, sse

SIDE_USAGE = Usage(50, 10, 0, 0)

PROVIDER = "scripted"
MODEL = "scripted-coder"  # not GPT-like: opencode then offers `write`/`edit`, not `apply_patch`
SMALL_MODEL = "scripted-small"
API_KEY = "scripted-key"
# USD per million tokens, in the config's (models.dev) field names.
COST = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}

# opencode 1.18 installs `@opencode-ai/plugin` with npm into every config folder whose
# `node_modules` is missing or whose `package-lock.json` lacks a dependency of `package.json`
# (`Npm.install`), and loads plugins only after that: about 7 s and 64 MB per fresh home. A copy
# installed once, linked into each home, makes it skip the install.
PLUGIN_PACKAGE = "@opencode-ai/plugin"
DEPS = Path(tempfile.gettempdir()) / "realcli" / "opencode-config-deps"

TOOL_NAMES = {"write": "write", "read": "read", "shell": "bash", "ask": "question"}


def recorded(usage: Usage) -> Usage:
    """What opencode records (`info.tokens`) for a response billed as `usage`."""
    return Usage(usage.input + usage.cache_write, usage.output, usage.cache_read, 0)


def cost_usd(usage: Usage) -> float:
    """opencode's `info.cost` for a response billed as `usage`, priced with `COST`."""
    seen = recorded(usage)
    total = (
        Decimal(seen.input) * Decimal(str(COST["input"]))
        + Decimal(seen.output) * Decimal(str(COST["output"]))
        + Decimal(seen.cache_read) * Decimal(str(COST["cache_read"]))
        + Decimal(seen.cache_write) * Decimal(str(COST["cache_write"]))
    )
    return float(total / Decimal(1_000_000))


def wire_usage(usage: Usage) -> dict[str, Any]:
    """`usage` as OpenAI's `usage` object."""
    prompt = usage.input + usage.cache_read + usage.cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _text(content: Any) -> str:
    """The text of one message's content (a string or a list of parts), less system reminders.

    opencode adds its reminders (plan mode, a change of agent) as text parts of their own.
    """
    if isinstance(content, str):
        return "" if content.lstrip().startswith("<system-reminder>") else content
    texts = []
    for part in content if isinstance(content, list) else []:
        text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else part
        if isinstance(text, str) and not text.lstrip().startswith("<system-reminder>"):
            texts.append(text)
    return "\n".join(texts)


def tool_input(call: Call) -> dict[str, Any]:
    """An abstract call as opencode's tool arguments."""
    if call.kind == "write":
        return {"filePath": call.args["path"], "content": call.args["content"]}
    if call.kind == "read":
        return {"filePath": call.args["path"]}
    if call.kind == "shell":
        return {"command": call.args["command"], "description": "run a command"}
    if call.kind == "ask":
        return {
            "questions": [
                {
                    "question": call.args["question"],
                    "header": "Question",
                    "options": list(ANSWERS),
                }
            ]
        }
    raise ValueError(call.kind)


class ChatCompletions:
    """opencode's provider protocol (OpenAI Chat Completions through openai-compatible)."""

    name = "chat"

    def serves(self, method: str, path: str) -> bool:
        """`POST /v1/chat/completions`."""
        return method == "POST" and path.rstrip("/").endswith("/chat/completions")

    def turn(self, path: str, body: dict[str, Any]) -> Turn:
        """The request as a `Turn`: user texts in order, `tool` results since the last one."""
        users: list[str] = []
        results: list[str] = []
        for message in body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            role = message.get("role")
            if role == "user":
                text = _text(message.get("content"))
                if text.strip():
                    users.append(text)
                    results = []
            elif role == "tool":
                results.append(_text(message.get("content")))
        tools = []
        for tool in body.get("tools") or []:
            if isinstance(tool, dict):
                function = tool.get("function") if isinstance(tool.get("function"), dict) else {}
                tools.append(str(function.get("name") or tool.get("name") or ""))
        rounds = sum(
            1
            for m in body.get("messages") or []
            if isinstance(m, dict) and m.get("role") == "assistant"
        )
        model = str(body.get("model", ""))
        return Turn("chat", path, model, bool(tools), tools, users, results, body, rounds=rounds)

    def side_reply(self, turn: Turn) -> tuple[int, dict[str, Any] | None, Reply | None]:
        """Titles and other tool-less requests: a short text, billed apart."""
        if not turn.main:
            return 200, None, Reply(text="Story work", usage=SIDE_USAGE)
        return 200, None, None

    def stream(self, turn: Turn, reply: Reply, seq: int) -> list[bytes]:
        """Chunks: role, text, one tool call each, finish reason, usage, `[DONE]`."""
        ident = f"chatcmpl-scripted-{seq}"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            body = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": 1_700_000_000 + seq,
                "model": turn.model,
                "choices": choices,
                **extra,
            }
            return sse(None, body)

        def delta(value: dict[str, Any]) -> bytes:
            return chunk([{"index": 0, "delta": value, "finish_reason": None}])

        chunks = [delta({"role": "assistant", "content": ""})]
        if reply.text:
            chunks.append(delta({"content": reply.text}))
        for number, call in enumerate(reply.calls):
            chunks.append(
                delta(
                    {
                        "tool_calls": [
                            {
                                "index": number,
                                "id": f"call_{seq}_{number}",
                                "type": "function",
                                "function": {
                                    "name": TOOL_NAMES[call.kind],
                                    "arguments": json.dumps(tool_input(call)),
                                },
                            }
                        ]
                    }
                )
            )
        finish = "tool_calls" if reply.calls else "stop"
        chunks.append(chunk([{"index": 0, "delta": {}, "finish_reason": finish}]))
        chunks.append(chunk([], usage=wire_usage(reply.usage)))
        chunks.append(b"data: [DONE]\n\n")
        return chunks


def config(url: str) -> dict[str, Any]:
    """opencode's `opencode.json` for the scripted provider at `url`."""
    model = {
        "name": "Scripted coder",
        "tool_call": True,
        "attachment": False,
        "reasoning": False,
        "temperature": True,
        "cost": COST,
        "limit": {"context": 200_000, "output": 32_000},
    }
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            PROVIDER: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted",
                "options": {"baseURL": url.rstrip("/") + "/v1", "apiKey": API_KEY},
                "models": {
                    MODEL: model,
                    SMALL_MODEL: {**model, "name": "Scripted small"},
                },
            }
        },
        "model": f"{PROVIDER}/{MODEL}",
        "small_model": f"{PROVIDER}/{SMALL_MODEL}",
        "autoupdate": False,
        "share": "disabled",
        "permission": {"edit": "allow", "bash": "allow", "webfetch": "deny"},
    }


def install_deps(deps: Path = DEPS, version: str = "1.18.33") -> Path:
    """`deps` holding `@opencode-ai/plugin` as opencode would install it (npm, once).

    Installed beside `deps` and renamed into place, so sessions started together do not race.
    """
    if (deps / "node_modules" / PLUGIN_PACKAGE / "package.json").is_file():
        return deps
    deps.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=deps.name + ".", dir=deps.parent))
    try:
        subprocess.run(
            ["npm", "install", "--prefix", str(staging), "--save-exact", "--ignore-scripts",
             "--no-audit", "--no-fund", f"{PLUGIN_PACKAGE}@{version}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        staging.rename(deps)
    except OSError:
        if not (deps / "node_modules" / PLUGIN_PACKAGE / "package.json").is_file():
            raise  # not another session's install that won the rename
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return deps


def seed_deps(config_dir: Path, deps: Path) -> None:
    """Make opencode's dependency check pass in `config_dir`: manifests copied, modules linked."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(deps / name, config_dir / name)
    link = config_dir / "node_modules"
    if not link.exists():
        link.symlink_to(deps / "node_modules", target_is_directory=True)


def configure(home: Path, url: str, project: Path, *, deps: Path | None = DEPS) -> dict[str, str]:
    """Write opencode's config under the private `home`; the environment that uses it.

    With `deps` (installed by `install_deps` when missing), the config folder is seeded so that
    opencode does not download its plugin package again; `deps=None` leaves that to opencode.
    opencode asks no trust question and keeps its state under the XDG data folder, so nothing
    is written to `project` unless it has a `.opencode` folder: opencode would install the
    package there too (into the project), so with `deps` that folder is seeded as well.
    """
    xdg = {
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    for folder in xdg.values():
        folder.mkdir(parents=True, exist_ok=True)
    target = xdg["XDG_CONFIG_HOME"] / "opencode" / "opencode.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(config(url), indent=2))
    if deps is not None:
        install_deps(deps)
        seed_deps(target.parent, deps)
        if (project / ".opencode").is_dir():
            seed_deps(project / ".opencode", deps)
    return {
        "HOME": str(home),
        **{name: str(path) for name, path in xdg.items()},
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_SHARE": "1",
    }
