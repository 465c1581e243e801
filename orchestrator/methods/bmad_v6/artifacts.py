"""v6 story files (classic) and build-auto specs: finding them, and what they say.

A classic story is `{implementation_artifacts}/{story_key}.md` with a `Status:` line under the
title (create-story's template); code-review appends `### Review Findings` with `[Review]`
items (6.2+) or `Review Follow-ups (AI)` with `[AI-Review]` items (6.0). A build-auto spec is
`spec-<slug>.md` (the slug LLM-derived, led by the story key) with YAML frontmatter (`status`,
`followup_review_recommended`, `deferred:`) and one or more `## Auto Run Result` sections.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import YamlFileError
from orchestrator.files import write_atomic
from orchestrator.yamlfile import load_text, load_yaml

_STATUS_LINE = re.compile(
    r"^[ \t>*_]*Status[ \t*_]*:[ \t*_]*(?P<value>[^\r\n]*?)[ \t*_]*\r?$", re.M
)
_STATUS_VALUE = re.compile(r"^(Status[ \t]*:[ \t]*)(\S[^\r\n]*)$", re.M)  # as written
_STATUS_HEADING = re.compile(
    r"^#{2,3}[ \t]*Status[ \t]*\r?\n(?:[ \t]*\r?\n)*(?P<value>[^\r\n#]+)", re.M
)
_FINDING = re.compile(
    r"^[ \t]*[-*][ \t]*\[(?P<done>[ xX])\][ \t]*"
    r"\[(?:AI-)?Review\]\[(?P<kind>[^\]]+)\][ \t]*(?P<text>.*)$",
    re.M,
)
_RESULT = re.compile(r"^##[ \t]*Auto Run Result[ \t]*$", re.M)
_BLOCKING = re.compile(
    r"^[ \t>*_-]*Blocking condition[ \t*_]*:[ \t*_]*(?P<value>[^\r\n]*?)\r?$", re.M | re.I
)
_FRONTMATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(?P<body>.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def set_story_status(path: Path, value: str) -> None:
    """Rewrite the story's `Status:` line (kept as it is when already `value`)."""
    text = path.read_text()
    if _STATUS_VALUE.search(text) is None:
        return
    updated = _STATUS_VALUE.sub(lambda m: f"{m[1]}{value}", text, count=1)
    if updated != text:
        write_atomic(path, updated)


def normalise(value: str) -> str:
    """`Ready for Dev`, `ready_for_dev`, `**review**` -> `ready-for-dev`, `review`."""
    text = re.sub(r"[*_`]", " ", value).strip().lower()
    return re.sub(r"[\s]+", "-", text)


def story_status(text: str) -> str | None:
    """The story's status (normalised), from `Status: x` or a `## Status` section."""
    match = _STATUS_LINE.search(text) or _STATUS_HEADING.search(text)
    if match is None:
        return None
    value = normalise(match["value"])
    return value or None


def find_story(folder: Path, key: str) -> Path | None:
    """`{key}.md`, else the newest `N-M-*.md` of the key's numbers, in `folder`."""
    exact = folder / f"{key}.md"
    if exact.is_file():
        return exact
    numbers = re.match(r"^(\d+)[.-](\d+)([a-z]?)", key)
    if numbers is None:
        return None
    stem = f"{numbers[1]}-{numbers[2]}{numbers[3]}"
    try:
        found = [
            p
            for p in folder.iterdir()
            if p.suffix == ".md"
            and (p.stem == stem or p.stem.startswith(f"{stem}-"))
            and p.is_file()
        ]
    except (FileNotFoundError, NotADirectoryError):
        return None
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


@dataclass(frozen=True)
class Findings:
    """code-review's findings in a story: open and resolved, by kind (Decision, Patch, Defer)."""

    open: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        """Whether the story holds any finding at all."""
        return bool(self.open or self.resolved or self.deferred)


def review_findings(text: str) -> Findings:
    """The `[Review][...]` (6.2+) and `[AI-Review][...]` (6.0) items of a story."""
    open_: list[str] = []
    resolved: list[str] = []
    deferred: list[str] = []
    for match in _FINDING.finditer(text):
        item = f"[{match['kind']}] {match['text'].strip()}"
        if match["kind"].strip().lower() == "defer":
            deferred.append(match["text"].strip())
        elif match["done"] == " ":
            open_.append(item)
        else:
            resolved.append(item)
    return Findings(tuple(open_), tuple(resolved), tuple(deferred))


@dataclass(frozen=True)
class Spec:
    """What a build-auto spec (or result file) says."""

    path: Path
    status: str | None
    results: int  # how many `## Auto Run Result` sections it has
    followup: bool
    blocking: str | None
    deferred: tuple[str, ...] = ()


def read_spec(path: Path) -> Spec | None:
    """The spec at `path`, or None when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError:
        return None
    front: dict[str, Any] = {}
    match = _FRONTMATTER.match(text)
    if match is not None:
        try:
            loaded = load_text(match["body"], source=str(path))
        except YamlFileError:
            loaded = None
        front = loaded if isinstance(loaded, dict) else {}
    status = front.get("status")
    if status is None:  # a result file without frontmatter still says `Status: x`
        status = story_status(text)
    blocking = _BLOCKING.search(text)
    deferred = []
    for item in front.get("deferred") or []:
        if isinstance(item, dict) and item.get("summary"):
            where = f" ({item['location']})" if item.get("location") else ""
            deferred.append(f"{str(item['summary']).strip()}{where}")
        elif isinstance(item, str):
            deferred.append(item.strip())
    return Spec(
        path=path,
        status=normalise(str(status)) if status is not None else None,
        results=len(_RESULT.findall(text)),
        followup=front.get("followup_review_recommended") is True,
        blocking=blocking["value"].strip() or None if blocking else None,
        deferred=tuple(deferred),
    )


def find_specs(folder: Path, key: str) -> list[Path]:
    """Build-auto specs and result files of story `key` in `folder`, newest first.

    `spec-{key}*.md` (the slug leads with the key; `-2`, `-3` on a clash), `spec-N-M-*.md` for
    the key's numbers, and `{N-M}-*.md` under `stories/` for a folder+id dispatch.
    """
    numbers = re.match(r"^(\d+)[.-](\d+)([a-z]?)", key)
    stems = {key}
    if numbers is not None:
        stems.add(f"{numbers[1]}-{numbers[2]}{numbers[3]}")
    found: list[Path] = []
    for candidate_dir, prefix in ((folder, "spec-"), (folder / "stories", "")):
        try:
            entries = list(candidate_dir.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = entry.name
            if not name.endswith(".md") or not name.startswith(prefix):
                continue
            rest = name[len(prefix) : -3]
            if (
                any(rest == stem or rest.startswith(f"{stem}-") for stem in stems)
                and entry.is_file()
            ):
                found.append(entry)
    return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


@dataclass(frozen=True)
class StoriesEntry:
    """A story of a spec folder's `stories.yaml` (the Story Breakdown's list), for folder+id
    dispatch: `/bmad-build-auto` given the folder and the id writes `stories/<id>-<slug>.md`."""

    folder: Path
    id: str
    title: str
    invoke_dev_with: str = ""

    def specs(self) -> list[Path]:
        """The story's spec files (`stories/<id>-*.md`; ids are prefix-free), newest first."""
        try:
            found = [
                p
                for p in (self.folder / "stories").iterdir()
                if p.name.startswith(f"{self.id}-") and p.suffix == ".md" and p.is_file()
            ]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def _stories_yaml(specs_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(folder, entry) of every `<specs_dir>/*/stories.yaml`, in folder and file order; a file
    that cannot be read is skipped."""
    try:
        folders = sorted(p for p in specs_dir.iterdir() if p.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for folder in folders:
        try:
            entries = load_yaml(folder / "stories.yaml")
        except (OSError, YamlFileError):
            continue
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                yield folder, entry


def stories_ids(specs_dir: Path) -> list[str]:
    """The ids of every `<specs_dir>/*/stories.yaml`, in order (for `init`)."""
    ids = [e["id"] for _, e in _stories_yaml(specs_dir) if isinstance(e.get("id"), str)]
    return list(dict.fromkeys(ids))


def stories_entries(specs_dir: Path, story_id: str) -> list[StoriesEntry]:
    """Every `<specs_dir>/*/stories.yaml` entry whose `id` is `story_id` (as a string: the
    schema quotes ids, and an unquoted `1` is not `"1"`)."""
    return [
        StoriesEntry(
            folder=folder,
            id=story_id,
            title=str(entry.get("title") or story_id),
            invoke_dev_with=str(entry.get("invoke_dev_with") or ""),
        )
        for folder, entry in _stories_yaml(specs_dir)
        if entry.get("id") == story_id
    ]
