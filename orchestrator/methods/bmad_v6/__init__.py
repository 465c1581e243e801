"""The BMad Method v6 (`_bmad/`): the classic cycle (create-story, dev-story, code-review) and
build-auto (6.11+), with the sprint-status moves the orchestrator owns."""

from orchestrator.methods.bmad_v6.artifacts import (
    Findings,
    Spec,
    find_specs,
    find_story,
    read_spec,
    review_findings,
    story_status,
)
from orchestrator.methods.bmad_v6.layout import V6ConfigError, V6Layout, detect_flavour
from orchestrator.methods.bmad_v6.project import BmadV6, BmadV6Project
from orchestrator.methods.bmad_v6.sprint import SprintStatus, move, read_sprint

BMAD_V6 = BmadV6("classic")
BMAD_V6_BUILD = BmadV6("build")

__all__ = [
    "BMAD_V6",
    "BMAD_V6_BUILD",
    "BmadV6",
    "BmadV6Project",
    "Findings",
    "Spec",
    "SprintStatus",
    "V6ConfigError",
    "V6Layout",
    "detect_flavour",
    "find_specs",
    "find_story",
    "move",
    "read_spec",
    "read_sprint",
    "review_findings",
    "story_status",
]
