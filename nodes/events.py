"""The events the story graph streams to whoever shows a run (`stream_mode="custom"`)."""

from __future__ import annotations

import contextlib
from typing import Any

from langgraph.runtime import Runtime

from orchestrator.state import StoryContext


def emit(runtime: Runtime[StoryContext] | None, **event: Any) -> None:
    """A custom stream event for the board; never fails the node."""
    if runtime is not None and runtime.stream_writer is not None:
        with contextlib.suppress(Exception):
            runtime.stream_writer(event)
