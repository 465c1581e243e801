"""opencode: `--prompt` and `--agent` on the TUI, signals and usage through a plugin of ours.

opencode has no hook commands; plugins see its events. The orchestrator writes a small plugin
for each session and adds it with `OPENCODE_CONFIG_CONTENT` (`plugin: ["file://..."]`), which
opencode merges over the user's own config, so no file of the user's is edited. The plugin
writes `session.idle` to the turn-end file and waits for the orchestrator's answer, as the hook
relay does: a nudge goes back into the session through opencode's own client
(`session.promptAsync`, with the agent and model the session uses), nothing typed. It also
writes a permission or question request to the attention file, each submitted message
(`chat.message`) to the submit file, and each finished assistant message's tokens and cost
(opencode prices them itself) to a usage file the orchestrator reads after the session.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
    MAX_COUNT,
    USAGE_VARIABLE,
    CliSpec,
    Launch,
    LaunchSpec,
    UsageQuery,
    UsageRecord,
    json_lines,
    number,
)
from orchestrator.agents.clis.standin import (
    Session,
    StandIn,
    Tokens,
)
from orchestrator.agents.usage import ModelTokens

PLUGIN = """// bmad-orchestrator, for one session: turn ends, questions, submits and usage as files;
// a turn end also asks the orchestrator whether to go on (see orchestrator/agents/relay.py).
import { appendFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

const keep = (path, value) => {
  writeFileSync(path + ".tmp", JSON.stringify(value), { mode: 0o600 });
  renameSync(path + ".tmp", path);
};
const ASKING = new Set(["permission.asked", "permission.updated", "question.asked"]);
const last = new Map(); // session id -> the agent and model its messages use
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// Keep the turn end; wait for the orchestrator's answer: what to tell the agent next, or null.
const ask = async (path, event) => {
  const seconds = Number(process.env.BMAD_STEER_SECONDS ?? "30");
  if (!(seconds > 0)) {
    keep(path, { ...event, bmad_kind: "turn-ended" });
    return null;
  }
  const request = randomUUID();
  const until = Date.now() + seconds * 1000;
  keep(path, { ...event, bmad_kind: "turn-end", bmad_request: request, bmad_until: until / 1000 });
  while (Date.now() < until) {
    try {
      const answer = JSON.parse(readFileSync(path + ".reply", "utf8"));
      if (answer.request === request) {
        unlinkSync(path + ".reply");
        writeFileSync(path + ".taken.tmp", request, { mode: 0o600 });
        renameSync(path + ".taken.tmp", path + ".taken");
        return JSON.parse(answer.output || "{}").nudge || null;
      }
    } catch {}
    await sleep(20);
  }
  return null;
};

export const BmadOrchestrator = async ({ client }) => ({
  "chat.message": async (_input, output) => {
    const message = output && output.message;
    if (message) last.set(message.sessionID, { agent: message.agent, model: message.model });
    if (process.env.BMAD_SUBMIT_FILE) keep(process.env.BMAD_SUBMIT_FILE, { submitted: true });
  },
  event: async ({ event }) => {
    const turnEnd = process.env.BMAD_TURN_END_FILE;
    if (event.type === "session.idle" && turnEnd) {
      const nudge = await ask(turnEnd, event);
      const id = event.properties && event.properties.sessionID;
      if (nudge && id) {
        const body = { ...(last.get(id) || {}), parts: [{ type: "text", text: nudge }] };
        await client.session.promptAsync({ path: { id }, body });
      }
    } else if (ASKING.has(event.type) && process.env.BMAD_ATTENTION_FILE) {
      keep(process.env.BMAD_ATTENTION_FILE, event);
    } else if (event.type === "message.updated" && process.env.BMAD_USAGE_FILE) {
      const info = event.properties && event.properties.info;
      if (info && info.role === "assistant" && info.tokens) {
        appendFileSync(process.env.BMAD_USAGE_FILE, JSON.stringify(info) + "\\n", { mode: 0o600 });
      }
    }
  },
});
"""


def usage_file(run_dir: Path, name: str) -> Path:
    """Where the plugin records one session's assistant messages."""
    return run_dir / f"{name}.usage.jsonl"


class Opencode:
    """opencode's plugin and usage."""

    name = "opencode"

    def launch(self, spec: LaunchSpec) -> Launch:
        """The plugin, added to whatever inline config the user already passes."""
        plugin = spec.run_dir / f"{spec.name}.opencode-plugin.js"
        usage = usage_file(spec.run_dir, spec.name)
        try:
            config = json.loads(os.environ.get("OPENCODE_CONFIG_CONTENT") or "{}")
        except json.JSONDecodeError:
            config = {}
        if not isinstance(config, dict):
            config = {}
        plugins = config.get("plugin")
        config["plugin"] = [*(plugins if isinstance(plugins, list) else []), f"file://{plugin}"]
        return Launch(
            env={"OPENCODE_CONFIG_CONTENT": json.dumps(config), USAGE_VARIABLE: str(usage)},
            files={plugin: PLUGIN, usage: ""},  # the usage file starts empty each attempt
        )

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """A turn end (`session.idle`) goes on with `text` as the session's next message."""
        if payload.get("type") == "session.idle":
            return json.dumps({"nudge": text})
        return None

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """The last state of each assistant message the plugin saw, tokens and cost."""
        path = usage_file(query.run_dir, query.name)
        if not path.is_file():
            return None
        messages: dict[str, dict[str, object]] = {}
        for info in json_lines(path):
            messages[str(info.get("id") or len(messages))] = info  # updates: the last wins
        per_model: dict[str, ModelTokens] = {}
        usd = 0.0
        for info in messages.values():
            tokens = info.get("tokens")
            if not isinstance(tokens, dict):
                continue
            cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
            assert isinstance(cache, dict)
            model = str(info.get("modelID") or "unknown")
            per_model.setdefault(model, ModelTokens()).add(
                ModelTokens(
                    input=number(tokens.get("input")),
                    output=number(tokens.get("output")) + number(tokens.get("reasoning")),
                    cache_read=number(cache.get("read")),
                    cache_write=number(cache.get("write")),
                )
            )
            cost = info.get("cost")
            usd += _dollars(cost)
        return UsageRecord(per_model, source=str(path), usd=usd)


# Idle: the footer's command hint, without the busy marker that shares its line (1.18).
READY = re.compile(r"ctrl\+p commands")
BUSY = re.compile(r"\besc interrupt\b")


def _dollars(value: object) -> float:
    """A recorded cost (a missing one counts 0; an impossible one makes the record unknown)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    if not math.isfinite(value) or value < 0 or value > MAX_COUNT:
        raise ValueError(f"an impossible cost in a usage record: {value!r}")
    return float(value)


class OpencodeStandIn(StandIn):
    """opencode as the simulated agent plays it: our plugin, handed its events by node."""

    idle_text = 'Ask anything... "Fix a TODO in the codebase"   ctrl+p commands'
    default_model = "gemini-2.5-pro"

    def end_turn(
        self, session: Session, prompt: str, message: str, transcript: Path | None
    ) -> None:
        """`session.idle`."""
        plugin_events({"type": "session.idle", "properties": {"sessionID": session.session_id}})

    def ask(self, session: Session, question: str) -> bool:
        """`permission.asked`."""
        properties = {"id": "per_1", "sessionID": session.session_id, "permission": "bash"}
        event = {"type": "permission.asked", "properties": {**properties, "patterns": ["rm"]}}
        return plugin_events(event)

    def record_usage(self, session: Session, tokens: Tokens) -> Path | None:
        """An assistant message's `message.updated` events: empty first, then with usage."""
        empty = {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
        info = {
            "id": f"msg_{session.turns}",
            "sessionID": session.session_id,
            "role": "assistant",
            "modelID": tokens.model,
            "providerID": "anthropic",
            "cost": 0.0,
            "tokens": empty,
        }
        counted = {
            "input": tokens.input,
            "output": tokens.output,
            "reasoning": 0,
            "cache": {"read": tokens.cache_read, "write": tokens.cache_write},
        }
        cost = round((tokens.input * 3 + tokens.output * 15) / 1_000_000, 6)
        final = {**info, "cost": cost, "tokens": counted}
        plugin_events(
            {"type": "message.updated", "properties": {"info": info}},
            {"type": "message.updated", "properties": {"info": final}},
        )
        return None


def plugin_events(*events: dict[str, Any]) -> bool:
    """Hand events to the plugins of `OPENCODE_CONFIG_CONTENT` (run by node, as ES modules)."""
    config = json.loads(os.environ.get("OPENCODE_CONFIG_CONTENT") or "{}")
    plugins = [p for p in config.get("plugin", []) if str(p).startswith("file://")]
    driver = (
        "const m = await import(process.argv[1]);"
        "for (const f of Object.values(m)) { const h = await f({});"
        " for (const e of JSON.parse(process.argv[2])) await h.event({ event: e }); }"
    )
    for plugin in plugins:
        subprocess.run(
            ["node", "--input-type=module", "-e", driver, plugin, json.dumps(events)],
            check=True,
            timeout=60,
        )
    return bool(plugins)


SPEC = CliSpec(
    "opencode",
    "opencode",
    Opencode(),
    ready=READY,
    busy=BUSY,
    question=re.compile(r"esc dismiss"),
    prompt_flag=("--prompt",),
    activation="agent",
    agent_flag=("--agent",),
    submit_signal=True,
    tested=("1.18.33", "1.18.33"),
    standin=OpencodeStandIn(),
)
