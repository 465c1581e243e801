"""The Anthropic Messages protocol (Claude Code): `POST /v1/messages`, streamed as SSE."""

from __future__ import annotations

import json
from typing import Any

from tests.realcli.model import ANSWERS, Call, Reply, Turn, Usage, sse

SIDE_USAGE = Usage(50, 10, 0, 0)

TOOL_NAMES = {"write": "Write", "ask": "AskUserQuestion", "shell": "Bash", "read": "Read"}


def _texts(content: Any) -> tuple[list[str], list[str]]:
    """(texts, tool results) of one message's content."""
    if isinstance(content, str):
        return [content], []
    texts, results = [], []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            results.append(inner if isinstance(inner, str) else json.dumps(inner))
    return texts, results


def tool_input(call: Call) -> dict[str, Any]:
    """An abstract call as Claude's tool input."""
    if call.kind == "write":
        return {"file_path": call.args["path"], "content": call.args["content"]}
    if call.kind == "read":
        return {"file_path": call.args["path"]}
    if call.kind == "shell":
        return {"command": call.args["command"], "description": "run a command"}
    if call.kind == "ask":
        return {
            "questions": [
                {
                    "question": call.args["question"],
                    "header": "Question",
                    "options": list(ANSWERS),
                    "multiSelect": False,
                }
            ]
        }
    raise ValueError(call.kind)


class Anthropic:
    """Claude Code's provider protocol."""

    name = "anthropic"

    def serves(self, method: str, path: str) -> bool:
        return path.startswith("/v1/messages")

    def turn(self, path: str, body: dict[str, Any]) -> Turn:
        users: list[str] = []
        results: list[str] = []
        for message in body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            texts, tool_results = _texts(message.get("content"))
            if message.get("role") == "user":
                if tool_results:
                    results += tool_results
                real = [t for t in texts if not t.lstrip().startswith("<system-reminder>")]
                if real and not tool_results:
                    users.append("\n".join(real))
                    results = []
        tools = [str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)]
        main = "count_tokens" not in path and bool(tools)
        rounds = sum(
            1
            for m in body.get("messages") or []
            if isinstance(m, dict) and m.get("role") == "assistant"
        )
        return Turn(
            "anthropic", path, str(body.get("model", "")), main, tools, users, results, body,
            rounds=rounds,
        )  # fmt: skip

    def side_reply(self, turn: Turn) -> tuple[int, dict[str, Any] | None, Reply | None]:
        if "count_tokens" in turn.path:
            return 200, {"input_tokens": 1000}, None
        if not turn.main:  # titles and the like: a short text, billed apart
            return 200, None, Reply(text="Story work", usage=SIDE_USAGE)
        return 200, None, None

    def stream(self, turn: Turn, reply: Reply, seq: int) -> list[bytes]:
        usage = reply.usage
        start_usage = {
            "input_tokens": usage.input,
            "output_tokens": 1,
            "cache_creation_input_tokens": usage.cache_write,
            "cache_read_input_tokens": usage.cache_read,
        }
        chunks = [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": f"msg_scripted_{seq}",
                        "type": "message",
                        "role": "assistant",
                        "model": turn.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        ]
        index = 0
        if reply.text:
            chunks += [
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                ),
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": reply.text},
                    },
                ),
                sse("content_block_stop", {"type": "content_block_stop", "index": index}),
            ]
            index += 1
        for number, call in enumerate(reply.calls):
            chunks += [
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": f"toolu_{seq}_{number}",
                            "name": TOOL_NAMES[call.kind],
                            "input": {},
                        },
                    },
                ),
                sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(tool_input(call)),
                        },
                    },
                ),
                sse("content_block_stop", {"type": "content_block_stop", "index": index}),
            ]
            index += 1
        chunks += [
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": "tool_use" if reply.calls else "end_turn",
                        "stop_sequence": None,
                    },
                    "usage": {**start_usage, "output_tokens": usage.output},
                },
            ),
            sse("message_stop", {"type": "message_stop"}),
        ]
        return chunks
