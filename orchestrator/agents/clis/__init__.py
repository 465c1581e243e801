"""The agent CLIs the orchestrator drives, one module each: screens, prompt, hooks, usage."""

from orchestrator.agents.clis.base import CliSpec
from orchestrator.agents.clis.claude import SPEC as CLAUDE
from orchestrator.agents.clis.codex import SPEC as CODEX
from orchestrator.agents.clis.copilot import SPEC as COPILOT
from orchestrator.agents.clis.gemini import SPEC as GEMINI
from orchestrator.agents.clis.opencode import SPEC as OPENCODE

CLIS: dict[str, CliSpec] = {spec.name: spec for spec in (CLAUDE, CODEX, GEMINI, COPILOT, OPENCODE)}
# Files some CLI keeps in the working copy for a session: never committed.
SESSION_FILES: tuple[str, ...] = tuple(f for spec in CLIS.values() for f in spec.session_files)
# What no agent session inherits, whichever CLI it runs (one CLI may start another).
INHERITED_NOT: tuple[str, ...] = tuple(name for spec in CLIS.values() for name in spec.unset)

__all__ = ["CLAUDE", "CLIS", "CODEX", "COPILOT", "GEMINI", "INHERITED_NOT", "OPENCODE", "CliSpec"]
