"""The four stages of the BMad story cycle: the one definition every part uses."""

from __future__ import annotations

from typing import Literal

StageName = Literal["sm", "po", "dev", "qa"]
STAGES: tuple[StageName, ...] = ("sm", "po", "dev", "qa")
StartAt = Literal["sm", "po", "dev", "qa", "done"]  # where a story starts: a stage, or done
StepName = Literal["sm", "po", "dev", "qa", "integrate"]  # a stage, or merging the story's work
