"""What a story graph's nodes need from outside the state: the runtime context.

Handed in through LangGraph's `context_schema` (never globals), so a parent graph or a test
passes its own project, tmux socket and agent. Plain fields only: the tmux manager is built from
them on first use, which keeps the context constructible from JSON (LangGraph Studio).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.defaults import (
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_NUDGES,
    DEFAULT_PREFIX,
    DEFAULT_SETTLE,
    DEFAULT_SOCKET,
    DEFAULT_STALL_TIMEOUT,
)
from orchestrator.profiles import AgentProfile, ProfileName, PromptVia, make_profile

if TYPE_CHECKING:
    from orchestrator.bmad import BmadPaths
    from orchestrator.sessions import TmuxAgentManager

DEFAULT_TIMEOUTS = {"sm": 600.0, "po": 300.0, "dev": 1800.0, "qa": 900.0}


@dataclass(frozen=True)
class AgentSpec:
    """Which agent CLI runs a stage."""

    profile: ProfileName = "claude"
    command: str | Sequence[str] | None = None
    flags: Sequence[str] = ()
    ready_timeout: float | None = None
    prompt_via: PromptVia = "argv"
    settle: float = DEFAULT_SETTLE
    nudges: int = DEFAULT_NUDGES

    def build(self) -> AgentProfile:
        return make_profile(
            self.profile,
            self.command,
            flags=self.flags,
            ready_timeout=self.ready_timeout,
            prompt_via=self.prompt_via,
        )


@dataclass(frozen=True)
class StageSettings:
    """Per-stage budget and overrides; None means the stage default."""

    timeout: float | None = None
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    prompt: str | None = None
    agent: AgentSpec | None = None


def _stage_settings(value: Mapping[str, object]) -> StageSettings:
    settings = dict(value)
    if isinstance(settings.get("agent"), Mapping):
        settings["agent"] = AgentSpec(**settings["agent"])  # type: ignore[arg-type]
    return StageSettings(**settings)  # type: ignore[arg-type]


@dataclass
class StoryContext:
    """Runtime settings for the story graph's nodes."""

    project: Path = Path(".")
    socket: str = DEFAULT_SOCKET
    session_prefix: str = DEFAULT_PREFIX
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    state_dir: Path | None = None
    run_id: str | None = None
    agent: AgentSpec = field(default_factory=AgentSpec)
    stages: Mapping[str, StageSettings] = field(default_factory=dict)
    # Resume: a live session of the same stage is adopted, not killed and restarted.
    adopt_live_sessions: bool = False
    _manager: TmuxAgentManager | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        # LangGraph builds the context from JSON (Studio, the HTTP API) as `StoryContext(**d)`,
        # which leaves nested values as dicts and strings.
        self.project = Path(self.project)
        self.state_dir = Path(self.state_dir) if self.state_dir else None
        if isinstance(self.agent, Mapping):
            self.agent = AgentSpec(**self.agent)
        self.stages = {
            name: _stage_settings(value) if isinstance(value, Mapping) else value
            for name, value in self.stages.items()
        }

    def stage(self, stage: str) -> StageSettings:
        return self.stages.get(stage) or StageSettings()

    def timeout(self, stage: str) -> float:
        return self.stage(stage).timeout or DEFAULT_TIMEOUTS[stage]

    def agent_for(self, stage: str) -> AgentSpec:
        """The agent that runs `stage`: the stage's own, or the epic's."""
        return self.stage(stage).agent or self.agent

    def profile(self, stage: str) -> AgentProfile:
        return self.agent_for(stage).build()

    def manager(self) -> TmuxAgentManager:
        """The tmux manager, built once (blocking: call it from a worker thread)."""
        from orchestrator.sessions import TmuxAgentManager

        with self._lock:
            if self._manager is None:
                self._manager = TmuxAgentManager(
                    Path(self.project),
                    socket=self.socket,
                    prefix=self.session_prefix,
                    state_dir=Path(self.state_dir) if self.state_dir else None,
                    run_id=self.run_id,
                    log_max_bytes=self.log_max_bytes,
                )
            return self._manager

    def paths(self) -> BmadPaths:
        from orchestrator.bmad import BmadPaths

        return BmadPaths.load(Path(self.project).resolve())
