"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import sys


def simulated_argv(*args: str) -> list[str]:
    """The simulated agent's command line, run by this interpreter."""
    return [sys.executable, "-m", "orchestrator.simulated_agent", *args]
