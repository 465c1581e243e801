"""The simulated agent's usage: it spends nothing, but reports made-up tokens per turn (model
`simulated`) so a rehearsal or the demo shows what cost tracking looks like."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.agents.clis.base import (
    USAGE_VARIABLE,
    Launch,
    LaunchSpec,
    UsageQuery,
    UsageRecord,
    json_lines,
    number,
)
from orchestrator.agents.usage import ModelTokens

MODEL = "simulated"


class SimulatedSupport:
    """Its usage file; no hooks to steer through (it reads the turn-end protocol itself)."""

    name = "simulated"

    def launch(self, spec: LaunchSpec) -> Launch:
        """Where the agent records its turns."""
        return Launch(env={USAGE_VARIABLE: str(spec.run_dir / f"{spec.session_id}.usage.jsonl")})

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """The turns the agent recorded, summed (None when it recorded none)."""
        path = query.run_dir / f"{query.session_id}.usage.jsonl"  # this session only
        if not path.is_file():
            return None
        total, turns = ModelTokens(), 0
        for line in json_lines(path):
            total.add(ModelTokens(number(line.get("input")), number(line.get("output"))))
            turns += 1
        return UsageRecord({MODEL: total}, source=str(path)) if turns else None

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """Nothing to steer through."""
        return None
