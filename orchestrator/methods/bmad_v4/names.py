"""Which file in the stories folder is which story, by the names real v4 projects use."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.methods.bmad_v4.text import mtime_ns


def story_name_matches(name: str, story_id: str) -> bool:
    """Whether a file name in the stories folder is story `story_id`'s.

    Shapes seen in real projects: `{id}.story.md`, `{id}.{slug}.md` (a dotted slug included),
    `{id}.{slug}.story.md`, `{id}-{slug}.md`, `story-{id}-{slug}.md`, `story-{id}.md`, and the
    brownfield `epic-{n}-story-{m}.md`. `1.1`, `1.10` and `1.1.1` stay distinct: what follows
    the id may not start with another id part.
    """
    if not name.lower().endswith(".md"):
        return False
    stem = name[:-3]
    lowered, wanted = stem.lower(), story_id.lower()
    epic, _, number = story_id.partition(".")
    if number and lowered in (f"epic-{epic}-story-{number}".lower(),):
        return True
    for prefix in ("story-", ""):
        if not lowered.startswith(prefix + wanted):
            continue
        rest = lowered[len(prefix + wanted) :]
        if rest == "" and prefix:
            return True  # story-1.1.md
        if rest[:1] not in (".", "-") or len(rest) < 2:
            continue
        # `1.1.1.story.md` / `1.1.1-x.md` belong to story 1.1.1, not 1.1.
        if re.match(r"^[.-]\d+([.-]|$)", rest) and not (rest[0] == "-" and prefix):
            continue
        return True
    return False


def find_story_file(stories_dir: Path, story_id: str) -> Path | None:
    """The story's file in `stories_dir` (or one subfolder down when the folder has none),
    the newest if several match; None if none does."""
    found = _story_files(stories_dir, story_id)
    if not found:
        try:
            subfolders = sorted(p for p in stories_dir.iterdir() if p.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            subfolders = []
        for folder in subfolders:
            found += _story_files(folder, story_id)
    return max(found, key=mtime_ns) if found else None


def _story_files(folder: Path, story_id: str) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if story_name_matches(p.name, story_id) and p.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def slugify(title: str) -> str:
    """BMad's gate-file slug: lowercase, spaces to hyphens, punctuation stripped."""
    words = re.sub(r"[^a-z0-9\s-]", "", title.lower()).split()
    return re.sub(r"-{2,}", "-", "-".join(words)).strip("-") or "story"
