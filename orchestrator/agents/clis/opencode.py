"""opencode: `--prompt` and `--agent` on the TUI, signals and usage through a plugin of ours.

opencode has no hook commands; plugins see its events. The orchestrator writes a small plugin
for each session and adds it with `OPENCODE_CONFIG_CONTENT` (`plugin: ["file://..."]`), which
opencode merges over the user's own config, so no file of the user's is edited. The plugin
writes `session.idle` to the turn-end file, a permission or question request to the attention
file, and each finished assistant message's tokens and cost (opencode prices them itself) to a
usage file the orchestrator reads after the session.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
    CliSpec,
    Launch,
    LaunchSpec,
    UsageQuery,
    UsageRecord,
    json_lines,
    number,
)
from orchestrator.agents.usage import ModelTokens

USAGE_VARIABLE = "BMAD_USAGE_FILE"
PLUGIN = """// bmad-orchestrator, for one session: turn ends, questions and usage, as files.
import { appendFileSync, renameSync, writeFileSync } from "node:fs";

const keep = (variable, value) => {
  const path = process.env[variable];
  if (!path) return;
  writeFileSync(path + ".tmp", JSON.stringify(value));
  renameSync(path + ".tmp", path);
};
const ASKING = new Set(["permission.asked", "permission.updated", "question.asked"]);

export const BmadOrchestrator = async () => ({
  event: async ({ event }) => {
    if (event.type === "session.idle") keep("BMAD_TURN_END_FILE", event);
    else if (ASKING.has(event.type)) keep("BMAD_ATTENTION_FILE", event);
    else if (event.type === "message.updated" && process.env.BMAD_USAGE_FILE) {
      const info = event.properties && event.properties.info;
      if (info && info.role === "assistant" && info.tokens) {
        appendFileSync(process.env.BMAD_USAGE_FILE, JSON.stringify(info) + "\\n");
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
        """The plugin does not wait for an answer."""
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
            usd += float(cost) if isinstance(cost, int | float) else 0.0
        return UsageRecord(per_model, source=str(path), usd=usd)


# Idle: the placeholder and the footer (third-party captures); the typed line's shape is not
# documented, so a `>` input line is accepted too: a wrong guess fails delivery loudly.
READY = re.compile(r"Ask anything|ctrl\+p commands|^\s*[┃│|]?\s*>\s")

SPEC = CliSpec(
    "opencode",
    "opencode",
    Opencode(),
    ready=READY,
    prompt_flag=("--prompt",),
    activation="agent",
    agent_flag=("--agent",),
)
