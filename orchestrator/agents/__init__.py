"""Agent CLIs: how each one starts, signals and is answered (profiles), and a simulated one.

The public names load on first use: the simulated agent, a program of its own started for every
stage, imports from this package and must start in tens of milliseconds.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PROFILE_NAMES", "AgentProfile", "Dialog", "make_profile"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("orchestrator.agents.profiles"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
