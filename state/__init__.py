"""The pydantic models that flow through the graphs, and the runtime context they run in."""

from orchestrator.state.context import AgentSettings, GitSettings, StageSettings, StoryContext
from orchestrator.state.story import (
    AttemptRecord,
    GateRecord,
    NudgeRecord,
    RecoveryEntry,
    StoryInput,
    StoryOutput,
    StoryPolicy,
    StoryState,
)

__all__ = [
    "AgentSettings",
    "AttemptRecord",
    "GateRecord",
    "GitSettings",
    "NudgeRecord",
    "RecoveryEntry",
    "StageSettings",
    "StoryContext",
    "StoryInput",
    "StoryOutput",
    "StoryPolicy",
    "StoryState",
]
