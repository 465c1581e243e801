"""Printing the story graph: Mermaid always, ASCII boxes when grandalf is installed."""

from __future__ import annotations


def story_graph_mermaid() -> str:
    """The story graph as Mermaid text (offline)."""
    from orchestrator.graphs.story import build_story_graph

    return build_story_graph().compile().get_graph().draw_mermaid()


def story_graph_ascii() -> str | None:
    """ASCII boxes, or None without grandalf. Retry self-loops are left out: grandalf cannot
    route an edge from a box to itself."""
    from orchestrator.graphs.story import build_story_graph

    drawing = build_story_graph().compile().get_graph()
    drawing.edges = [edge for edge in drawing.edges if edge.source != edge.target]
    try:
        boxes = drawing.draw_ascii()
    except ImportError:
        return None
    return boxes + "\n(each stage also loops to itself to retry a failed attempt)"
