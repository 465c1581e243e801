"""The OpenAI Responses protocol (Codex CLI 0.171): `POST /v1/responses`, streamed as SSE.

Verified against `@openai/codex` 0.171.0 in a tmux pane (model `gpt-5.5`, the newest catalog
model that still gets the classic tools; the `gpt-6*` ones are `code_mode_only`).

Requests. A main turn offers `exec_command`, `write_stdin`, `apply_patch` (a *custom* freeform
tool), `request_user_input`, `view_image`, goal and MCP-resource tools, `tool_search` and
`web_search`. Its `input` holds two developer messages (base and skills instructions), a user
message `<environment_context>…</environment_context>` (and, with an AGENTS.md, one starting
`# AGENTS.md instructions for`), then the real prompts, assistant items and tool outputs.

Titles. On a thread's first prompt the TUI starts a hidden, ephemeral title thread: a request
with the same model that *does* offer a tool (`apply_patch`), a `text.format` JSON schema
`{"title": string <= 36}`, `thread_source: "thread_title"` in
`client_metadata["x-codex-turn-metadata"]`, and a user message starting "Generate a concise,
single-line task title". It is answered here with `{"title": …}` and `SIDE_USAGE`, billed as
not main. It has no rollout file, but Codex runs `notify` for it too (its own `thread-id`,
`input-messages[0]` the title instruction, before or after the session's own payload).
`Responses(titles=False)` answers it with HTTP 400 instead: nothing billed, no notify, no error
on screen (the footer keeps the provisional title, the prompt's first 36 characters).

Calls. `write` -> `apply_patch` with an `*** Add File:` patch (creates or overwrites, no approval
inside the workspace; a final newline is always written); `shell` -> `exec_command` (runs in the
workspace-write sandbox without approval); `read` -> `exec_command` `cat`; `ask` ->
`request_user_input`, which outside Plan mode only returns "request_user_input is unavailable in
Default mode" to the model (no question is shown).

Usage. `Usage(input, output, cache_read, cache_write)` goes on the wire as OpenAI counts it:
`input_tokens = input + cache_read + cache_write` (every prompt token),
`input_tokens_details = {cached_tokens: cache_read, cache_write_tokens: cache_write}`,
`output_tokens = output`. Codex sums these unchanged into the rollout's `total_token_usage`
(`input_tokens`, `cached_input_tokens`, `cache_write_input_tokens`, `output_tokens`,
`total_tokens`); `recorded()` gives the figures to expect. So fresh input is
`input_tokens - cached_input_tokens - cache_write_input_tokens`; a reader that subtracts only the
cached tokens counts cache writes twice. `Responses(cache_write_in_input=False)` leaves cache
writes out of `input_tokens` instead, for comparing with such a reader.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.realcli.model import Call, Reply, Turn, Usage, sse

SIDE_USAGE = Usage(50, 10, 0, 0)
TITLE = "Work on the story"
TITLE_MARK = "Generate a concise, single-line task title"
MODEL = "gpt-5.5"
KEY_VAR = "BMAD_TEST_CODEX_KEY"
# Context Codex adds as user messages: one XML-like block, or the AGENTS.md preamble.
INJECTED = re.compile(r"\A\s*(?:<([a-z_]+)>.*</\1>\s*\Z|# AGENTS\.md instructions for )", re.S)

# The TUI's screens (tmux capture-pane text, 220 columns).
# First run in a git repository (not in a plain folder). Enter trusts, but an Enter sent within
# a few ms of the screen's first draw is dropped: wait 0.1 s or more, re-send if still up.
# `1` alone does nothing; Esc goes "Back to Agent Command Center".
TRUST_SCREEN = re.compile(r"Trust this folder\?")
# Session up: the footer's hint line. Absent on the start-up splash (which already shows
# `› Ask Codex to do anything` and `? for shortcuts`) and while text is typed; present while a
# turn runs too, so idle is IDLE_FOOTER and not BUSY. With a prompt on argv an idle-looking
# screen shows for about 0.1 s before the prompt is submitted.
IDLE_FOOTER = re.compile(r"(?m)^  ← for agents · \? for shortcuts")
BUSY = re.compile(r"esc to interrupt")  # "• Working (0s • esc to interrupt)"
# The input box: `› ` text (continuation lines indented two), a blank line, then the footer
# `  <model> · <cwd>[ · <title>]`. Scrollback echoes of prompts and menu entries also start `› `.
INPUT_BOX = re.compile(
    r"(?m)^› (?P<text>.*(?:\n  \S.*)*)\n\n  \S[^\n]* · (?P<cwd>/[^\n·]*?)(?: · |$)"
)
PLACEHOLDER = "Ask Codex to do anything"


def _text(content: Any) -> list[str]:
    """The text parts of a message's or a tool output's content."""
    if isinstance(content, str):
        return [content]
    parts = content if isinstance(content, list) else []
    return [
        str(part.get("text", ""))
        for part in parts
        if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text")
    ]


def _thread_source(body: dict[str, Any]) -> str:
    """`thread_source` from the request's turn metadata ("user", "thread_title", ...)."""
    meta = body.get("client_metadata")
    raw = meta.get("x-codex-turn-metadata") if isinstance(meta, dict) else None
    try:
        data = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return ""
    return str(data.get("thread_source", "")) if isinstance(data, dict) else ""


def patch(path: str, content: str) -> str:
    """An apply_patch that creates (or overwrites) `path` with `content`."""
    body = content[:-1] if content.endswith("\n") else content
    lines = "".join(f"+{line}\n" for line in body.split("\n"))
    return f"*** Begin Patch\n*** Add File: {path}\n{lines}*** End Patch\n"


def call_item(call: Call, cid: str) -> dict[str, Any]:
    """An abstract call as a finished Responses output item."""
    arguments: dict[str, Any]
    if call.kind == "write":
        return {
            "id": f"ctc_{cid}",
            "type": "custom_tool_call",
            "status": "completed",
            "call_id": f"call_{cid}",
            "name": "apply_patch",
            "input": patch(call.args["path"], call.args["content"]),
        }
    if call.kind == "ask":
        question = {
            "id": "question",
            "header": "Question",
            "question": call.args["question"],
            "options": [
                {"label": "Yes (Recommended)", "description": "go on"},
                {"label": "No", "description": "stop"},
            ],
        }
        name, arguments = "request_user_input", {"questions": [question]}
    elif call.kind == "shell":
        name, arguments = "exec_command", {"cmd": call.args["command"]}
    elif call.kind == "read":
        name, arguments = "exec_command", {"cmd": f"cat -- {json.dumps(call.args['path'])}"}
    else:
        raise ValueError(call.kind)
    return {
        "id": f"fc_{cid}",
        "type": "function_call",
        "status": "completed",
        "call_id": f"call_{cid}",
        "name": name,
        "arguments": json.dumps(arguments),
    }


class Responses:
    """Codex's provider protocol."""

    name = "responses"

    def __init__(self, cache_write_in_input: bool = True, titles: bool = True):
        self.cache_write_in_input = cache_write_in_input
        self.titles = titles

    def serves(self, method: str, path: str) -> bool:
        """`POST /v1/responses` (not `/v1/responses/compact`: that shows as not scripted)."""
        return method == "POST" and path.rstrip("/") == "/v1/responses"

    def turn(self, path: str, body: dict[str, Any]) -> Turn:
        """The request as a `Turn`: real prompts only, tool outputs since the last one."""
        users: list[str] = []
        results: list[str] = []
        for item in body.get("input") or []:
            if not isinstance(item, dict):
                continue
            kind = item.get("type", "message")
            if kind == "message" and item.get("role") == "user":
                real = [t for t in _text(item.get("content")) if not INJECTED.match(t)]
                if real:
                    users.append("\n".join(real))
                    results = []
            elif kind in ("function_call_output", "custom_tool_call_output"):
                output = item.get("output")
                texts = _text(output)
                results.append("\n".join(texts) if texts else json.dumps(output))
        tools = [
            str(tool.get("name") or tool.get("type"))
            for tool in body.get("tools") or []
            if isinstance(tool, dict)
        ]
        title = _thread_source(body) == "thread_title" or any(
            user.startswith(TITLE_MARK) for user in users[-1:]
        )
        main = bool(tools) and not title
        model = str(body.get("model", ""))
        return Turn(
            "responses", path, model, main, tools, users, results, body, rounds=_rounds(body)
        )

    def side_reply(self, turn: Turn) -> tuple[int, dict[str, Any] | None, Reply | None]:
        """Titles: the structured `{"title": …}` answer, billed apart (or a 400, unbilled)."""
        if turn.main:
            return 200, None, None
        if not self.titles:  # the title thread fails quietly: no notify for it, no screen error
            return 400, {"error": {"type": "invalid_request_error", "message": "no titles"}}, None
        return 200, None, Reply(text=json.dumps({"title": TITLE}), usage=SIDE_USAGE)

    def wire_usage(self, usage: Usage) -> dict[str, Any]:
        """`usage` as the `response.completed` usage object."""
        prompt = usage.input + usage.cache_read
        if self.cache_write_in_input:
            prompt += usage.cache_write
        return {
            "input_tokens": prompt,
            "input_tokens_details": {
                "cached_tokens": usage.cache_read,
                "cache_write_tokens": usage.cache_write,
            },
            "output_tokens": usage.output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + usage.output,
        }

    def recorded(self, usage: Usage) -> dict[str, int]:
        """What Codex's rollout `total_token_usage` holds after being billed `usage` in all."""
        wire = self.wire_usage(usage)
        return {
            "input_tokens": wire["input_tokens"],
            "cached_input_tokens": usage.cache_read,
            "cache_write_input_tokens": usage.cache_write,
            "output_tokens": usage.output,
            "reasoning_output_tokens": 0,
            "total_tokens": wire["total_tokens"],
        }

    def stream(self, turn: Turn, reply: Reply, seq: int) -> list[bytes]:
        """The reply as Responses SSE events, ending with `response.completed`."""
        number = 0

        def event(kind: str, **fields: Any) -> bytes:
            nonlocal number
            number += 1
            return sse(kind, {"type": kind, "sequence_number": number, **fields})

        response = {
            "id": f"resp_scripted_{seq}",
            "object": "response",
            "created_at": 0,
            "model": turn.model,
            "status": "in_progress",
            "output": [],
        }
        chunks = [
            event("response.created", response=response),
            event("response.in_progress", response=response),
        ]
        items: list[dict[str, Any]] = []
        if reply.text:
            part = {"type": "output_text", "text": reply.text, "annotations": []}
            item = {
                "id": f"msg_scripted_{seq}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
            at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            chunks += [
                event(
                    "response.output_item.added",
                    output_index=0,
                    item={**item, "status": "in_progress", "content": []},
                ),
                event("response.content_part.added", **at, part={**part, "text": ""}),
                event("response.output_text.delta", **at, delta=reply.text),
                event("response.output_text.done", **at, text=reply.text),
                event("response.content_part.done", **at, part=part),
                event("response.output_item.done", output_index=0, item=item),
            ]
            items.append(item)
        for index, call in enumerate(reply.calls):
            item = call_item(call, f"{seq}_{index}")
            at = {"item_id": item["id"], "output_index": len(items)}
            custom = item["type"] == "custom_tool_call"
            field, kind = ("input", "custom_tool_call_input") if custom else (
                "arguments", "function_call_arguments"
            )  # fmt: skip
            chunks += [
                event(
                    "response.output_item.added",
                    output_index=len(items),
                    item={**item, "status": "in_progress", field: ""},
                ),
                event(f"response.{kind}.delta", **at, delta=item[field]),
                event(f"response.{kind}.done", **at, **{field: item[field]}),
                event("response.output_item.done", output_index=len(items), item=item),
            ]
            items.append(item)
        done = {**response, "status": "completed", "output": items}
        chunks.append(
            event("response.completed", response={**done, "usage": self.wire_usage(reply.usage)})
        )
        return chunks


def _toml(text: str) -> str:
    """`text` as a TOML basic string (JSON escapes are valid TOML escapes)."""
    return json.dumps(text)


def configure(
    home: Path, url: str, project: Path, *, daemon: bool = False, offline: bool = True
) -> dict[str, str]:
    """Write `<home>/.codex/config.toml` for the scripted server; the environment to run with.

    No project is trusted here (the first run shows "Trust this folder?" in a git repository;
    see `trust`). What the settings prevent, as seen on 0.171.0:
    - the "Meet GPT-6 Sol" model-upgrade screen (`notice.model_migrations`);
    - the curated-plugin sync from github.com and chatgpt.com (`features.plugins`,
      `remote_plugin`, `apps`), analytics and feedback uploads, the update check, start-up
      tips (`tui.show_tooltips`), the screen-reader probe;
    - the one request no setting stops: the TUI's GET of raw.githubusercontent.com/openai/
      codex/main/announcement_tip.toml (a DNS query even offline). With `offline` (default) the
      environment routes it to a closed local proxy port (`HTTPS_PROXY=http://127.0.0.1:9`,
      `NO_PROXY=127.0.0.1,localhost`); under strace a whole session then connected nowhere but
      127.0.0.1. Commands the agent runs inherit these variables;
    - the detached `codex app-server --managed-daemon` and its `pid-update-loop` updater,
      which outlive the pane (`features.daemon_auto_start = false`, unless `daemon=True`;
      any `-c` override other than `features.*` booleans also keeps it from starting).
    `project` is accepted for symmetry with the other CLIs and not written anywhere.
    """
    del project
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    lines = [
        f"model = {_toml(MODEL)}",
        'model_provider = "local"',
        "check_for_update_on_startup = false",
        "",
        "[model_providers.local]",
        'name = "scripted"',
        f"base_url = {_toml(url.rstrip('/') + '/v1')}",
        'wire_api = "responses"',
        f"env_key = {_toml(KEY_VAR)}",
        "request_max_retries = 0",
        "stream_max_retries = 0",
        "",
        "[features]",
        "plugins = false",
        "remote_plugin = false",
        "apps = false",
        f"daemon_auto_start = {'true' if daemon else 'false'}",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[feedback]",
        "enabled = false",
        "",
        "[tui]",
        "show_tooltips = false",
        "screen_reader_detection_done = true",
        "",
        "[notice.model_migrations]",
        f'{_toml(MODEL)} = "gpt-6-sol"',
        "",
    ]
    (codex_home / "config.toml").write_text("\n".join(lines))
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home), KEY_VAR: "scripted-key"}
    if offline:
        closed = "http://127.0.0.1:9"  # the discard port: nothing listens, the request fails
        env |= {"HTTPS_PROXY": closed, "HTTP_PROXY": closed, "ALL_PROXY": closed}
        env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def trust(home: Path, project: Path) -> None:
    """Trust `project` in `<home>/.codex/config.toml`, so no "Trust this folder?" screen shows.

    Codex looks the folder up by its own path, then by its git root; trust the path that is
    started in. (On the command line only the inline-table form works:
    `-c 'projects={"/abs/path"={trust_level="trusted"}}'`; `-c 'projects."/abs".trust_level=…'`
    keeps the quotes in the key and the screen still shows.)
    """
    with (home / ".codex" / "config.toml").open("a") as config:
        config.write(f'\n[projects.{_toml(str(project.resolve()))}]\ntrust_level = "trusted"\n')


MODEL_ITEMS = ("function_call", "custom_tool_call", "reasoning")


def _rounds(body: dict[str, Any]) -> int:
    """How many responses of the model the input holds: runs of the model's own items."""
    rounds, inside = 0, False
    for item in body.get("input") or []:
        if not isinstance(item, dict):
            continue
        own = item.get("type") in MODEL_ITEMS or (
            item.get("type", "message") == "message" and item.get("role") == "assistant"
        )
        if own and not inside:
            rounds += 1
        inside = own
    return rounds
