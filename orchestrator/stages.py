"""The four stages of the BMad story cycle: the one definition every part uses."""

from __future__ import annotations

from typing import Literal

StageName = Literal["sm", "po", "dev", "qa"]
STAGES: tuple[StageName, ...] = ("sm", "po", "dev", "qa")
StartAt = Literal["sm", "po", "dev", "qa", "done"]  # where a story starts: a stage, or done
StepName = Literal["sm", "po", "dev", "qa", "integrate"]  # a stage, or merging the story's work
# Where a story can wait for a person: after the PO's GO (before Dev spends tokens), after QA
# passed (before Done), and when an agent asked a question the nudges did not settle.
GateName = Literal["after_po", "after_qa", "on_needs_input"]
GATES: tuple[GateName, ...] = ("after_po", "after_qa", "on_needs_input")
# Outcomes that send a story back or stop it (a PO NO-GO, a Dev Blocked, a QA FAIL), and the
# one that may (a CONCERNS gate, as `concerns:` says): how a board colours them.
SETBACKS = frozenset({"rejected", "blocked", "FAIL"})
DOUBTS = frozenset({"CONCERNS"})
