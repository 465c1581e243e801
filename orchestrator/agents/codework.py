"""The simulated Dev's work on code: scripted edits, and merge conflicts resolved.

`--dev-edit [ID=]PATH[:LINE]` makes story ID (every story without `ID=`) change PATH, relative
to the project: with LINE it replaces that line, without it appends one line. Edits are
idempotent, so a fix round does not add them twice. When git reports conflicts in the working
directory (a merge round), each conflicted file keeps both sides and is staged, as a Dev
resolving "keep both stories' work" would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.git import Git

_MARKERS = ("<<<<<<< ", ">>>>>>> ")


@dataclass(frozen=True)
class Edit:
    """One scripted change: which story, which file, and which line (None: append)."""

    story: str | None
    path: str
    line: int | None


def parse_edit(spec: str) -> Edit:
    """`[ID=]PATH[:LINE]` as an `Edit` (ValueError when LINE is not a positive number)."""
    story, sep, rest = spec.partition("=")
    if not sep:
        story, rest = "", spec
    path, colon, line = rest.rpartition(":")
    if not colon or not line.isdigit():
        path, line = rest, ""
    if line and int(line) < 1:
        raise ValueError(f"--dev-edit {spec!r}: LINE counts from 1")
    return Edit(story or None, path, int(line) if line else None)


def apply_edits(project: Path, story_id: str, edits: list[Edit]) -> list[str]:
    """Make this story's edits; returns the paths changed."""
    changed: list[str] = []
    text_line = f"story {story_id} was here"
    for edit in edits:
        if edit.story not in (None, story_id):
            continue
        path = project / edit.path
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().splitlines() if path.exists() else []
        if text_line in lines:
            continue
        if edit.line is None:
            lines.append(text_line)
        else:
            while len(lines) < edit.line:
                lines.append("")
            lines[edit.line - 1] = text_line
        path.write_text("\n".join(lines) + "\n")
        changed.append(edit.path)
    return changed


def keep_both(text: str) -> str:
    """A conflicted file with both sides kept, markers (and a diff3 base) removed."""
    kept: list[str] = []
    in_base = False
    for line in text.splitlines(keepends=True):
        if line.startswith(_MARKERS):
            in_base = False
        elif line.startswith("||||||| "):
            in_base = True
        elif line.rstrip("\n") == "=======":
            in_base = False
        elif not in_base:
            kept.append(line)
    return "".join(kept)


def resolve_conflicts(folder: Path) -> list[str]:
    """Resolve every conflicted file in the worktree holding `folder`; returns them."""
    git = Git(folder)
    if not git.ok("rev-parse", "--is-inside-work-tree"):
        return []
    root = Path(git.run("rev-parse", "--show-toplevel").strip())
    conflicted = git.at(root).lines("diff", "--name-only", "--diff-filter=U", "-z")
    for name in conflicted:
        path = root / name
        path.write_text(keep_both(path.read_text()))
        git.at(root).run("add", "--", name)
    return conflicted
