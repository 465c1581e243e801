"""BMad methods behind one interface (`Method`); `get_method` picks one by name."""

from __future__ import annotations

from typing import Literal

from orchestrator.errors import ConfigError
from orchestrator.methods.base import (
    UNKNOWN,
    Baseline,
    Method,
    Project,
    Rehearsal,
    StageOutput,
    StageRequest,
    StartAt,
    StoryStanding,
)

MethodName = Literal["bmad-v4"]
METHOD_NAMES: tuple[MethodName, ...] = ("bmad-v4",)
DEFAULT_METHOD: MethodName = "bmad-v4"


def get_method(name: str = DEFAULT_METHOD) -> Method:
    """The method called `name` (`bmad-v4`)."""
    if name == "bmad-v4":
        from orchestrator.methods.bmad_v4 import BMAD_V4

        return BMAD_V4
    raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(METHOD_NAMES)}")


__all__ = [
    "DEFAULT_METHOD",
    "METHOD_NAMES",
    "UNKNOWN",
    "Baseline",
    "Method",
    "MethodName",
    "Project",
    "Rehearsal",
    "StageOutput",
    "StageRequest",
    "StartAt",
    "StoryStanding",
    "get_method",
]
