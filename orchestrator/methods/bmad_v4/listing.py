"""The stories a v4 project names, in order: its story files and the `Story N.M` headings of its
PRD's epics (sharded or not), as core-config places them. For `init`, which lists them."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from orchestrator.methods.bmad_v4.paths import BmadPaths

# `{E}.{S}.story.md` or `{E}.{S}.{slug}.md` (bmad-v4-in-the-wild.md); letters in epics are real.
STORY_FILE = re.compile(r"^(?P<id>[A-Za-z0-9]+\.\d+[a-z]?)\.[\w.-]+\.md$")
HEADING = re.compile(r"^#+\s*Story\s+(?P<id>[A-Za-z0-9]+\.\d+[a-z]?)(?![\w.])", re.M)
MAX_BYTES = 4 * 1024 * 1024  # a document bigger than this is not read for headings


def known_stories(paths: BmadPaths) -> list[str]:
    """Story ids of the project's story files and epics, in their natural order."""
    found: set[str] = set()
    if paths.stories.is_dir():
        for path in paths.stories.iterdir():
            if (match := STORY_FILE.match(path.name)) and path.is_file():
                found.add(match["id"])
    for document in _epic_documents(paths):
        try:
            if document.stat().st_size <= MAX_BYTES:
                text = document.read_text(errors="replace")
                found.update(match["id"] for match in HEADING.finditer(text))
        except OSError:
            continue
    return sorted(found, key=_natural)


def _epic_documents(paths: BmadPaths) -> list[Path]:
    """The PRD's epic files (sharded) or the PRD itself, where core-config says they are."""
    prd = paths.config.get("prd")
    section = prd if isinstance(prd, dict) else {}
    sharded = section.get("prdSharded", True)
    folder = paths.root / str(section.get("prdShardedLocation") or "docs/prd")
    # A file-name pattern from the config, matched by name only (never a path glob).
    pattern = str(section.get("epicFilePattern") or "epic-{n}*.md").replace("{n}", "*")
    pattern = re.sub(r"\*+", "*", pattern.rsplit("/", 1)[-1])
    names = sorted(p for p in folder.iterdir()) if sharded and folder.is_dir() else []
    documents = [p for p in names if fnmatch.fnmatchcase(p.name, pattern)]
    single = paths.root / str(section.get("prdFile") or "docs/prd.md")
    if not documents and single.is_file():
        documents = [single]
    return [d for d in documents if d.is_file() and not d.is_symlink()]


def _natural(story_id: str) -> tuple[tuple[int, str], ...]:
    """`1.2` before `1.10`; letters sort after numbers."""
    return tuple((int(p), "") if p.isdigit() else (1 << 30, p) for p in re.split(r"[.]", story_id))
