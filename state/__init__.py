"""The pydantic models that flow through the graphs."""

from state.story import (
    STAGES,
    AttemptRecord,
    RecoveryEntry,
    StageName,
    StoryPolicy,
    StoryState,
)

__all__ = [
    "STAGES",
    "AttemptRecord",
    "RecoveryEntry",
    "StageName",
    "StoryPolicy",
    "StoryState",
]
