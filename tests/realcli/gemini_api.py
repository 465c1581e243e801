"""The Gemini API protocol (Gemini CLI 0.61): `POST /v1beta/models/<model>:<method>`.

Requests the CLI sends (seen with `@google/gemini-cli` 0.61.0, API-key auth, model "Auto"):

- `:streamGenerateContent?alt=sse` with `tools[].functionDeclarations`: the agent's own turn
  (`main`). Its first user message holds a `<session_context>` part (date, OS, folder listing)
  before the prompt's own part; a BeforeAgent hook's `additionalContext` comes as a
  `<hook_context>` part. Both are left out of `user_texts`. An AfterAgent hook's
  `{"decision": "deny", "reason": R}` comes back as a new user message whose only text is R.
- `:generateContent` with `generationConfig.responseJsonSchema`: side requests that want JSON,
  answered from the schema (`JSON_ANSWERS` for the ones that steer the CLI): the model router
  (`complexity_score`, or `model_choice` for the older classifier), to
  `gemini-3.5-flash-lite`, once per prompt (not for tool results or hook continuations);
  the next-speaker check (`next_speaker`, off by default: `model.skipNextSpeakerCheck` is
  true) and loop detection (`unproductive_state_confidence`, only after 30 turns of one
  prompt). A side answer that is not JSON makes the CLI retry it five times and stall for a
  minute and a half.
- `:generateContent` without a schema: the session summary, the steering acknowledgement and
  the like, answered with a short text.
- `:countTokens`: answered, though 0.61 was not seen to send it.

Side answers are JSON bodies, not billed, and not in the chat recording.

Usage: Gemini has no cache writes, and its `promptTokenCount` includes the cached tokens. One
response's `Usage(input, output, cache_read, cache_write)` is sent as

    promptTokenCount        = input + cache_read + cache_write
    cachedContentTokenCount = cache_read
    candidatesTokenCount    = output - thoughts
    thoughtsTokenCount      = thoughts   (round(output * thought_share); left out when 0)
    totalTokenCount         = promptTokenCount + output

and the CLI records it in `~/.gemini/tmp/<project>/chats/session-*.jsonl` as `tokens {input:
promptTokenCount, output: candidatesTokenCount, cached: cachedContentTokenCount, thoughts,
tool: 0, total}`. The orchestrator reads fresh input = input - cached + tool, output = output +
thoughts, cache_read = cached: so it sees `as_recorded(usage)`, with the cache writes counted
as fresh input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.realcli.model import ANSWERS, Call, Reply, Turn, Usage, sse

SIDE_USAGE = Usage(50, 10, 0, 0)

# Text parts the CLI adds to a user message that are not the user's words.
CONTEXT_TAGS = ("<session_context>", "<hook_context>")

TOOL_NAMES = {
    "write": "write_file",
    "read": "read_file",
    "shell": "run_shell_command",
    "ask": "ask_user",
}

# Answers to the JSON side requests, by property name; any other property gets a neutral value.
JSON_ANSWERS: dict[str, Any] = {
    "complexity_score": 10,  # the router: a simple task, so the flash model
    "complexity_reasoning": "Scripted.",
    "model_choice": "flash",
    "next_speaker": "user",  # the next-speaker check: the model's turn is over
    "unproductive_state_confidence": 0.0,  # loop detection: no loop
}

# What the CLI needs when the model ends with neither text nor a call after a user text: an
# empty answer there is an "invalid stream" that the CLI retries.
EMPTY_ANSWER = "Done."


def tool_args(call: Call) -> dict[str, Any]:
    """An abstract call as the Gemini CLI tool's arguments (the 0.61 declarations)."""
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
                    "type": "choice",
                    "options": list(ANSWERS),
                    "multiSelect": False,
                }
            ]
        }
    raise ValueError(call.kind)


def as_recorded(usage: Usage) -> Usage:
    """What the orchestrator reads back from Gemini's chat recording for a billed `usage`."""
    return Usage(usage.input + usage.cache_write, usage.output, usage.cache_read, 0)


def _result_text(response: Any) -> str:
    """A functionResponse's `response` as text: its `output`, else the whole JSON."""
    if isinstance(response, dict) and isinstance(response.get("output"), str):
        return response["output"]
    return json.dumps(response)


def _answers_results(body: dict[str, Any]) -> bool:
    """Whether the request's last message holds function responses (an empty answer is fine)."""
    contents = body.get("contents") or [{}]
    last = contents[-1] if isinstance(contents[-1], dict) else {}
    return any(isinstance(p, dict) and "functionResponse" in p for p in last.get("parts") or [])


def _fill(schema: Any, key: str = "") -> Any:
    """A value that satisfies a JSON schema as the CLI's side requests send them."""
    if key in JSON_ANSWERS:
        return JSON_ANSWERS[key]
    if not isinstance(schema, dict):
        return "scripted"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "string")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: _fill(sub, name) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return "scripted"


class GeminiApi:
    """Gemini CLI's provider protocol.

    `thought_share`: the part of each response's output tokens reported as thinking
    (`thoughtsTokenCount`), so that a test also covers the orchestrator adding thoughts to
    output; the total output stays `Usage.output`.
    """

    name = "gemini"

    def __init__(self, thought_share: float = 0.0):
        self.thought_share = thought_share

    def serves(self, method: str, path: str) -> bool:
        """`POST /v1beta/models/<model>:<method>` (any API version)."""
        return "/models/" in path and ":" in path.rsplit("/", 1)[-1]

    def turn(self, path: str, body: dict[str, Any]) -> Turn:
        """The request as a `Turn`: `main` when it streams and offers function declarations."""
        users: list[str] = []
        results: list[str] = []
        for content in body.get("contents") or []:
            if not isinstance(content, dict) or content.get("role") != "user":
                continue
            texts: list[str] = []
            responses: list[str] = []
            for part in content.get("parts") or []:
                if not isinstance(part, dict):
                    continue
                if isinstance(part.get("text"), str) and not part.get("thought"):
                    if not part["text"].lstrip().startswith(CONTEXT_TAGS):
                        texts.append(part["text"])
                elif isinstance(part.get("functionResponse"), dict):
                    responses.append(_result_text(part["functionResponse"].get("response")))
            results += responses
            if texts and not responses:
                users.append("\n".join(texts))
                results = []
        tools = [
            str(decl.get("name"))
            for tool in body.get("tools") or []
            if isinstance(tool, dict)
            for decl in tool.get("functionDeclarations") or []
            if isinstance(decl, dict)
        ]
        model = path.split("/models/", 1)[-1].split(":", 1)[0]
        main = ":streamGenerateContent" in path and bool(tools)
        rounds = sum(
            1
            for content in body.get("contents") or []
            if isinstance(content, dict) and content.get("role") == "model"
        )
        return Turn("gemini", path, model, main, tools, users, results, body, rounds=rounds)

    def side_reply(self, turn: Turn) -> tuple[int, dict[str, Any] | None, Reply | None]:
        """Token counts, JSON side requests (router, checks) and plain side texts."""
        if ":countTokens" in turn.path:
            return 200, {"totalTokens": 1000}, None
        if ":generateContent" in turn.path:
            config = turn.body.get("generationConfig") or {}
            schema = config.get("responseJsonSchema") or config.get("responseSchema")
            text = json.dumps(_fill(schema)) if schema else "Scripted side answer."
            return 200, self._response([{"text": text}], SIDE_USAGE), None
        if not turn.main:  # a streamed request without tools: a short text, billed apart
            return 200, None, Reply(text="Scripted side answer.", usage=SIDE_USAGE)
        return 200, None, None

    def stream(self, turn: Turn, reply: Reply, seq: int) -> list[bytes]:
        """The reply as one SSE chunk: text, function calls, finishReason STOP, usage."""
        parts: list[dict[str, Any]] = []
        if reply.text or (not reply.calls and not _answers_results(turn.body)):
            parts.append({"text": reply.text or EMPTY_ANSWER})
        for number, call in enumerate(reply.calls):
            parts.append(
                {
                    "functionCall": {
                        "id": f"call_{seq}_{number}",
                        "name": TOOL_NAMES[call.kind],
                        "args": tool_args(call),
                    }
                }
            )
        response = self._response(parts, reply.usage)
        response["responseId"] = f"scripted_{seq}"
        response["modelVersion"] = turn.model
        return [sse(None, response)]

    def usage_metadata(self, usage: Usage) -> dict[str, int]:
        """`usageMetadata` for one response (see the module's docstring)."""
        prompt = usage.input + usage.cache_read + usage.cache_write
        thoughts = min(usage.output, round(usage.output * self.thought_share))
        metadata = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": usage.output - thoughts,
            "cachedContentTokenCount": usage.cache_read,
            "totalTokenCount": prompt + usage.output,
        }
        if thoughts:
            metadata["thoughtsTokenCount"] = thoughts
        return metadata

    def _response(self, parts: list[dict[str, Any]], usage: Usage) -> dict[str, Any]:
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": self.usage_metadata(usage),
        }


def configure(home: Path, url: str, project: Path, *, trust: bool = False) -> dict[str, str]:
    """Write the CLI's user files under `home`; the environment to start it with.

    `~/.gemini/settings.json`: API-key auth, no auto-update or update notice (0.61 rewrites the
    older `general.disableAutoUpdate`/`disableUpdateNag` into these keys), no usage statistics
    or telemetry. With `trust`, `~/.gemini/trustedFolders.json` trusts `project`, so the trust
    dialog stays away even without `GEMINI_CLI_TRUST_WORKSPACE`. With these the CLI connects to
    nothing but `url`.
    """
    gemini = home / ".gemini"
    gemini.mkdir(parents=True, exist_ok=True)
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
    }
    (gemini / "settings.json").write_text(json.dumps(settings, indent=1))
    if trust:
        trusted = {str(project.resolve()): "TRUST_FOLDER"}
        (gemini / "trustedFolders.json").write_text(json.dumps(trusted, indent=1))
    return {
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": url,
        "GEMINI_API_KEY": "scripted",
        "GEMINI_CLI_NO_RELAUNCH": "1",
    }
