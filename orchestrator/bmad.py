"""BMad v4 project knowledge: where files live and how to read what agents wrote.

Agents write these files, so the parsers are lenient about layout (inline or next-line Status,
`Ready for Review` or `Review`) and strict about identity (story `1.1` is never `1.1.1`). A file
that cannot be parsed yet means "not done", never a crash: agents write in several pieces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml

from orchestrator.errors import ProjectError
from orchestrator.files import write_atomic

CONFIG_FILE = Path(".bmad-core") / "core-config.yaml"
DEFAULT_STORIES = "docs/stories"
DEFAULT_QA = "docs/qa"
DEFAULT_SLASH_PREFIX = "BMad"
GATE_VALUES = ("PASS", "CONCERNS", "FAIL", "WAIVED")
PoDecision = Literal["GO", "NO-GO"]


class BmadConfigError(ProjectError):
    """The project's core-config.yaml exists but cannot be used."""


@dataclass(frozen=True)
class BmadPaths:
    """The folders a BMad v4 project keeps its stories and QA output in (absolute)."""

    root: Path
    stories: Path
    qa: Path
    slash_prefix: str = DEFAULT_SLASH_PREFIX

    @property
    def gates(self) -> Path:
        return self.qa / "gates"

    @classmethod
    def load(cls, root: Path) -> BmadPaths:
        """Read `.bmad-core/core-config.yaml` if present; the v4 defaults fill the gaps."""
        root = Path(root).resolve()
        config: dict[str, object] = {}
        config_file = root / CONFIG_FILE
        if config_file.exists():
            try:
                loaded = yaml.safe_load(config_file.read_text()) or {}
            except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
                raise BmadConfigError(f"{config_file}: not valid YAML: {exc}") from None
            if not isinstance(loaded, dict):
                raise BmadConfigError(f"{config_file}: expected a mapping at the top level")
            config = loaded
        qa = config.get("qa")
        if qa is not None and not isinstance(qa, dict):
            # `qa: some/dir` would silently send the gate search to docs/qa.
            raise BmadConfigError(
                f"{config_file}: qa must be a mapping with qaLocation, got {qa!r}"
            )
        qa_location = qa.get("qaLocation") if isinstance(qa, dict) else None
        stories = _config_str(config_file, "devStoryLocation", config.get("devStoryLocation"))
        qa_dir = _config_str(config_file, "qa.qaLocation", qa_location)
        return cls(
            root=root,
            stories=_inside(root, config_file, "devStoryLocation", stories or DEFAULT_STORIES),
            qa=_inside(root, config_file, "qa.qaLocation", qa_dir or DEFAULT_QA),
            slash_prefix=_config_str(config_file, "slashPrefix", config.get("slashPrefix"))
            or DEFAULT_SLASH_PREFIX,
        )


def _inside(root: Path, config_file: Path, key: str, value: str) -> Path:
    """`root / value`, refused when it resolves outside the project (`..`, absolute, links)."""
    folder = root / value
    if not folder.resolve().is_relative_to(root):
        raise BmadConfigError(
            f"{config_file}: {key} {value!r} points outside the project {root}; "
            "agents and the orchestrator only write inside the project"
        )
    return folder


def _config_str(config_file: Path, key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BmadConfigError(f"{config_file}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


# --- story files -------------------------------------------------------------------------------


def story_file_pattern(story_id: str) -> re.Pattern[str]:
    """`1.1.story.md` and `1.1.user-login.md` are story 1.1; `1.1.1.story.md` is not."""
    return re.compile(rf"^{re.escape(story_id)}\.[^.]+\.md$")


def find_story_file(stories_dir: Path, story_id: str) -> Path | None:
    """The story's file in `stories_dir`, the newest if several match; None if none does."""
    pattern = story_file_pattern(story_id)
    try:
        candidates = [p for p in stories_dir.iterdir() if pattern.match(p.name) and p.is_file()]
    except FileNotFoundError:
        return None
    if not candidates:
        return None
    return max(candidates, key=_mtime_or_zero)


def _digest_or_none(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _mtime_or_zero(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def slugify(title: str) -> str:
    """BMad's gate-file slug: lowercase, spaces to hyphens, punctuation stripped."""
    words = re.sub(r"[^a-z0-9\s-]", "", title.lower()).split()
    return re.sub(r"-{2,}", "-", "-".join(words)).strip("-") or "story"


# --- Status -----------------------------------------------------------------------------------


class Status(StrEnum):
    """The v4 Status values, with the spelling the orchestrator writes."""

    DRAFT = "Draft"
    APPROVED = "Approved"
    IN_PROGRESS = "InProgress"
    REVIEW = "Review"
    READY_FOR_DONE = "Ready for Done"
    DONE = "Done"
    BLOCKED = "Blocked"


_STATUS_SYNONYMS = {
    "draft": Status.DRAFT,
    "approved": Status.APPROVED,
    "inprogress": Status.IN_PROGRESS,
    "review": Status.REVIEW,
    "readyforreview": Status.REVIEW,
    "readyfordone": Status.READY_FOR_DONE,
    "done": Status.DONE,
    "blocked": Status.BLOCKED,
}
_STATUS_HEADING = re.compile(r"^##[ \t]*Status\b[ \t]*(?::[ \t]*(?P<inline>.*?))?[ \t]*\r?$", re.M)


def normalise_status(value: str | None) -> Status | None:
    """`In Progress` == `InProgress`, `Ready for Review` == `Review`; unknown values are None."""
    if value is None:
        return None
    key = re.sub(r"[\s_*`-]", "", value).lower()
    return _STATUS_SYNONYMS.get(key)


@dataclass(frozen=True)
class _StatusSpan:
    value: str | None
    start: int  # where the value starts (or should be inserted)
    end: int
    inline: bool


def _status_span(text: str) -> _StatusSpan | None:
    heading = _STATUS_HEADING.search(text)
    if heading is None:
        return None
    if heading.group("inline"):
        return _StatusSpan(
            heading.group("inline"), heading.start("inline"), heading.end("inline"), True
        )
    position = heading.end()
    for line in re.finditer(r"^.*$", text[position:], re.M):
        content = line.group().strip()
        if not content:
            continue
        if content.startswith("#"):
            break
        start = position + line.start() + line.group().index(content)
        return _StatusSpan(content, start, start + len(content), False)
    return _StatusSpan(None, heading.end(), heading.end(), False)


def read_status(text: str) -> str | None:
    """The raw Status value of the first `## Status` heading, without markdown emphasis."""
    span = _status_span(text)
    if span is None or span.value is None:
        return None
    return span.value.strip().strip("*_`").strip() or None


def set_status(path: Path, value: str) -> None:
    """Rewrite only the Status value (atomically); the rest of the file stays byte-identical."""
    # Bytes, not read_text(): universal newlines would turn a CRLF file into LF on rewrite.
    text = path.read_bytes().decode()
    nl = "\r\n" if "\r\n" in text else "\n"
    span = _status_span(text)
    if span is None:
        title = re.search(r"^# [^\r\n]*", text, re.M)
        at = title.end() if title else 0
        # After a title the text already goes on with its own line break.
        heading = (
            f"{nl}{nl}## Status{nl}{nl}{value}" if title else f"## Status{nl}{nl}{value}{nl}{nl}"
        )
        updated = f"{text[:at]}{heading}{text[at:]}"
    elif span.value is None:
        updated = f"{text[: span.start]}{nl}{nl}{value}{text[span.end :]}"
    else:
        updated = f"{text[: span.start]}{value}{text[span.end :]}"
    write_atomic(path, updated)


# --- PO decisions ------------------------------------------------------------------------------

# `Decision: GO`, `**Decision:** NO-GO`, `PO Decision: GO`, `| Decision | GO |`.
_DECISION = re.compile(
    r"^[\s>*_|-]*(?:PO\s+)?Decision[*_]*\s*[:|]\s*[*_`]*\s*(NO[\s-]?GO|GO)\b", re.M | re.I
)


def read_po_decisions(text: str) -> list[PoDecision]:
    """Every `Decision: GO|NO-GO` line in the file, in order (the last one is the verdict)."""
    decisions: list[PoDecision] = []
    for match in _DECISION.finditer(text):
        decisions.append("GO" if match.group(1).upper() == "GO" else "NO-GO")
    return decisions


# --- QA gates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """A QA verdict, from a gate file or (fallback) the story's QA Results."""

    value: str
    path: Path
    mtime_ns: int


def gate_files(gates_dir: Path, story_id: str) -> list[Path]:
    """The gate files of `story_id` in `gates_dir` (any age, valid or not)."""
    pattern = re.compile(rf"^{re.escape(story_id)}-.+\.ya?ml$")
    try:
        return [p for p in gates_dir.iterdir() if pattern.match(p.name) and p.is_file()]
    except FileNotFoundError:
        return []


def read_gate_file(path: Path) -> str | None:
    """The `gate:` value of a gate file; None while it is missing, half-written or invalid."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    value = str(data.get("gate", "")).strip().upper()
    return value if value in GATE_VALUES else None


_QA_GATE_LINE = re.compile(
    r"^\s*[*_]*Gate[*_]*:[*_]*\s*[*_]*\s*(PASS|CONCERNS|FAIL|WAIVED)\b[*_]*"
    r"(?:\s*(?:→|->)\s*`?([^\s`]+))?",
    re.M,
)


def read_story_gates(text: str) -> list[tuple[str, str | None]]:
    """Every `Gate: VALUE [→ path]` line of the story's `## QA Results`, oldest first."""
    results = re.search(r"^##\s*QA Results\s*$", text, re.M)
    if results is None:
        return []
    section = text[results.end() :]
    following = re.search(r"^##\s", section, re.M)
    if following is not None:
        section = section[: following.start()]
    return [(m.group(1), m.group(2)) for m in _QA_GATE_LINE.finditer(section)]


def find_gate(
    paths: BmadPaths,
    story_id: str,
    *,
    since_ns: int = 0,
    story_gates_before: int = 0,
    unchanged: Mapping[str, str] | None = None,
) -> Gate | None:
    """The story's newest valid gate written at or after `since_ns`.

    Gate files win. The fallback is a `Gate:` line in the story's QA Results that was not there
    before the stage (`story_gates_before` lines were) and names no gate file, or one that this
    stage has already written validly (its value wins): QA writes QA Results first and the gate
    file second, and killing it in between would lose or leave stale the file BMad trusts.
    """
    dated = []
    for path in gate_files(paths.gates, story_id):
        mtime = _mtime_or_zero(path)
        if mtime >= since_ns:
            dated.append((mtime, path))
    for mtime, path in sorted(dated, reverse=True):
        if unchanged and unchanged.get(str(path)) == _digest_or_none(path):
            continue  # the same bytes as before the stage: not this stage's gate
        value = read_gate_file(path)
        if value is not None:
            return Gate(value, path, mtime)
    story_file = find_story_file(paths.stories, story_id)
    if story_file is None or _mtime_or_zero(story_file) < since_ns:
        return None
    gates = read_story_gates(story_file.read_text())
    if len(gates) <= story_gates_before:
        return None
    value, named = gates[-1]
    if named is None:
        return Gate(value, story_file, _mtime_or_zero(story_file))
    # A named file counts only once this stage has written it whole; a stale one (last round's)
    # or a half-written one means QA is still between its two writes.
    named_file = paths.root / named
    named_mtime = _mtime_or_zero(named_file)
    named_value = read_gate_file(named_file)
    if named_value is None or named_mtime < since_ns:
        return None
    return Gate(named_value, named_file, named_mtime)
