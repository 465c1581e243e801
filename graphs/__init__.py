"""Graph assembly."""

from orchestrator.graphs.story import build_story_graph

__all__ = ["build_story_graph"]
