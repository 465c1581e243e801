"""How a BMad v4 agent is called up in each agent CLI, and what its installer leaves for it.

From `tools/installer/lib/ide-setup.js` (v4.44.3): Claude Code and Gemini CLI get slash commands
(`.claude/commands/BMad/agents/sm.md`, `.gemini/commands/BMad/agents/sm.toml`); Codex reads
AGENTS.md and takes a mention ("As sm, ..."); opencode gets agents in `opencode.json[c]`
(`sm`, or `bmad-sm` with the installer's prefix option) for `--agent`; the Copilot CLI gets
nothing it reads (the chat modes are for VS Code), so it is pointed at the agent file itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestrator.methods.bmad_v4.paths import BmadPaths
from orchestrator.stages import StageName

AGENTS: dict[StageName, str] = {"sm": "sm", "po": "po", "dev": "dev", "qa": "qa"}
TITLES = {"sm": "Scrum Master", "po": "Product Owner", "dev": "Developer", "qa": "Test Architect"}
# The installer's `--ide` value for each profile.
IDE = {
    "claude": "claude-code",
    "gemini": "gemini",
    "codex": "codex",
    "opencode": "opencode",
    "copilot": "github-copilot",
}


def agent_file(stage: StageName) -> str:
    """The agent's definition, relative to the project."""
    return f".bmad-core/agents/{AGENTS[stage]}.md"


def head(activation: str, stage: StageName, command: str, paths: BmadPaths) -> str:
    """The first line of a stage prompt: the agent called up, then its star command."""
    agent = AGENTS[stage]
    if activation == "mention":
        return f"As {agent} (the BMad {TITLES[agent]} agent, {agent_file(stage)}), run {command}"
    if activation == "agent":  # the CLI started the agent already (`--agent`)
        return command
    if activation == "file":
        return (
            f"Read {agent_file(stage)} and become that BMad {TITLES[agent]} agent, following "
            f"its activation instructions; then run {command}"
        )
    return f"/{paths.slash_prefix}:agents:{agent} {command}"


def _jsonc(text: str) -> object:
    """JSON with comments and trailing commas, as opencode.jsonc allows."""
    text = re.sub(
        r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', lambda m: m.group(1) or "", text, flags=re.S
    )
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))


def opencode_agents(root: Path) -> set[str]:
    """The agent keys of the project's opencode config (empty when it has none)."""
    for name in ("opencode.jsonc", "opencode.json"):
        try:
            config = _jsonc((root / name).read_text())
        except (OSError, ValueError):
            continue
        agents = config.get("agent") if isinstance(config, dict) else None
        if isinstance(agents, dict):
            return set(agents)
    return set()


def agent_name(root: Path, stage: StageName) -> str:
    """opencode's name for the stage's agent: `bmad-sm` when installed with the prefix."""
    agent = AGENTS[stage]
    return f"bmad-{agent}" if f"bmad-{agent}" in opencode_agents(root) else agent


def install_hint(profile: str) -> str:
    """The installer command that sets a project up for this CLI."""
    return f"npx bmad-method@4.44.3 install --full --directory . --ide {IDE.get(profile, profile)}"


def missing_for(profile: str, root: Path, paths: BmadPaths, stage: StageName) -> str | None:
    """What the CLI needs to call up the stage's agent and the project lacks, or None."""
    agent = AGENTS[stage]
    if profile == "claude":
        path = root / ".claude" / "commands" / paths.slash_prefix / "agents" / f"{agent}.md"
    elif profile == "gemini":
        path = root / ".gemini" / "commands" / paths.slash_prefix / "agents" / f"{agent}.toml"
    elif profile == "codex":
        path = root / "AGENTS.md"
        if path.is_file() and f"(id: {agent})" not in path.read_text(errors="replace"):
            return f"{path} does not list the BMad {agent} agent"
    elif profile == "opencode":
        if agent_name(root, stage) not in opencode_agents(root):
            return f"opencode.json[c] in {root} has no agent {agent!r} (or 'bmad-{agent}')"
        return None
    else:  # copilot and any other CLI told to read the agent file
        path = root / agent_file(stage)
    return None if path.is_file() else f"{path} is missing"
