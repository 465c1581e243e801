"""What a user may name things in epic.yaml: story ids and paths (both reach files, git refs
and tmux session names)."""

from __future__ import annotations

import re
from typing import Any

# Story ids become file names and tmux session names: letters, digits and single separators.
_STORY_ID = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")  # whole (fullmatch)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_STORY_ID = 64


def check_story_id(value: Any) -> str:
    """A story id as a string, or ValueError saying what is wrong with it."""
    if isinstance(value, bool):
        raise ValueError('a story id must be a string such as "1.1"')
    if isinstance(value, float):
        # YAML reads 1.10 as the number 1.1: refuse rather than run the wrong story.
        raise ValueError(
            f'story id {value!r} must be quoted, e.g. "{value}" (YAML made it a number)'
        )
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f'a story id must be a string such as "1.1", got {value!r}')
    if len(value) > MAX_STORY_ID:
        raise ValueError(f"story id {value[:20]!r}... is longer than {MAX_STORY_ID} characters")
    if not _STORY_ID.fullmatch(value):
        raise ValueError(
            f"story id {value!r} may only hold letters, digits and single '.', '_' or '-' "
            "between them (it names files and tmux sessions)"
        )
    if value.lower().endswith(".lock"):
        raise ValueError(f"story id {value!r} may not end in '.lock' (git refuses such branches)")
    return value
