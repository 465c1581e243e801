"""The pydantic models that flow through the graphs."""

from state.story import (
    STAGES,
    AttemptRecord,
    NudgeRecord,
    RecoveryEntry,
    StageName,
    StoryPolicy,
    StoryState,
)

__all__ = [
    "STAGES",
    "AttemptRecord",
    "NudgeRecord",
    "RecoveryEntry",
    "StageName",
    "StoryPolicy",
    "StoryState",
]
