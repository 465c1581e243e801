"""BMad methods behind one interface (`Method`); `get_method` picks one by name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from orchestrator.errors import ConfigError
from orchestrator.methods.base import (
    UNKNOWN,
    Baseline,
    Method,
    Project,
    Rehearsal,
    RehearsalPaused,
    StageOutput,
    StageRequest,
    StartAt,
    StoryStanding,
)

MethodName = Literal["bmad-v4", "bmad-v6", "bmad-v6-build"]
METHOD_NAMES: tuple[MethodName, ...] = ("bmad-v4", "bmad-v6", "bmad-v6-build")
DEFAULT_METHOD: MethodName = "bmad-v4"


def get_method(name: str = DEFAULT_METHOD) -> Method:
    """The method called `name` (`bmad-v4`, `bmad-v6`, `bmad-v6-build`)."""
    if name == "bmad-v4":
        from orchestrator.methods.bmad_v4 import BMAD_V4

        return BMAD_V4
    if name in ("bmad-v6", "bmad-v6-build"):
        from orchestrator.methods.bmad_v6 import BMAD_V6, BMAD_V6_BUILD

        return BMAD_V6 if name == "bmad-v6" else BMAD_V6_BUILD
    raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(METHOD_NAMES)}")


def installed(root: Path) -> bool:
    """Whether some BMad (v4's `.bmad-core/`, v6's `_bmad/`) is installed at `root`."""
    from orchestrator.methods.bmad_v6.layout import is_v6

    return (root / ".bmad-core").is_dir() or is_v6(root)


def detect_method(root: Path) -> MethodName:
    """The method of the project at `root`: `.bmad-core/` is v4; `_bmad/` is v6, classic when
    its create-story, dev-story and code-review skills are installed, build when only
    `bmad-build-auto` is. Neither: v4, whose preflight then says how to install BMad."""
    from orchestrator.methods.bmad_v6.layout import detect_flavour, is_v6

    if (root / ".bmad-core").is_dir() or not is_v6(root):
        return "bmad-v4"
    return "bmad-v6" if detect_flavour(root) == "classic" else "bmad-v6-build"


__all__ = [
    "DEFAULT_METHOD",
    "METHOD_NAMES",
    "UNKNOWN",
    "Baseline",
    "Method",
    "MethodName",
    "Project",
    "Rehearsal",
    "RehearsalPaused",
    "StageOutput",
    "StageRequest",
    "StartAt",
    "StoryStanding",
    "detect_method",
    "get_method",
    "installed",
]
