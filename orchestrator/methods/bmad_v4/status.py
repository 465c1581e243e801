"""A story's Status: read in every form real agents write it, written back in its own form.

Lenient about form (any heading level, inline, bold, emoji, trailing commentary, CRLF, a BOM),
strict about meaning: a value that is not a workflow state, or two declarations that disagree,
read as `unknown` with the raw text kept, never as a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from orchestrator.files import write_atomic
from orchestrator.methods.base import UNKNOWN
from orchestrator.methods.bmad_v4.text import fold, strip_symbols


class Status(StrEnum):
    """The v4 Status values, with the spelling the orchestrator writes."""

    DRAFT = "Draft"
    APPROVED = "Approved"
    IN_PROGRESS = "InProgress"
    REVIEW = "Review"
    READY_FOR_REVIEW = "Ready for Review"
    DONE = "Done"
    BLOCKED = "Blocked"


class WorkflowState(StrEnum):
    """Where a story stands, whatever words its file uses."""

    DRAFT = "draft"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    REVIEW = "review"
    DONE = "done"
    BLOCKED = "blocked"


_SYNONYMS: dict[WorkflowState, tuple[str, ...]] = {
    WorkflowState.DRAFT: ("draft", "drafted", "brouillon", "borrador", "entwurf"),
    WorkflowState.APPROVED: (
        "approved",
        "approuve",
        "approuvee",
        "aprobado",
        "readyfordevelopment",
        "readyfordev",
        "readyforimplementation",
        "pretpourdeveloppement",
    ),
    WorkflowState.IN_PROGRESS: (
        "inprogress",
        "encours",
        "enprogreso",
        "wip",
        "indevelopment",
        "changesrequired",
        "changesrequested",
    ),
    WorkflowState.REVIEW: (
        "review",
        "readyforreview",
        "inreview",
        "underreview",
        "readyforqa",
        "enrevue",
        # apply-qa-fixes: gaps closed after a PASS gate; QA confirms, the owner moves to Done.
        "readyfordone",
    ),
    WorkflowState.DONE: (
        "done",
        "completed",
        "complete",
        "finished",
        "closed",
        "termine",
        "terminee",
        "termineetvalide",
    ),
    WorkflowState.BLOCKED: ("blocked", "bloque", "bloquee"),
}
_STATE_BY_KEY = {key: state for state, keys in _SYNONYMS.items() for key in keys}
# The Status label in the languages real stories use (`Story Status`, `Current Status` too).
_LABEL = r"(?:(?:current|story)[ \t]+)?(?:status|statut|estado|état|etat|状态)"
_HEADING = re.compile(
    rf"^(?P<hashes>\#{{1,6}})[ \t]*[*_]*(?P<label>{_LABEL})[*_]*[ \t]*"
    rf"(?:[:：][ \t]*(?P<inline>[^\r\n]*?))?[ \t]*\r?$",
    re.M | re.I,
)
_LABEL_LINE = re.compile(
    rf"^(?P<lead>[ \t]*(?:[-*+][ \t]+)?(?:>[ \t]*)?)[*_]{{0,2}}(?P<label>{_LABEL})[*_]{{0,2}}"
    rf"[ \t]*[:：][*_]{{0,2}}[ \t]*(?P<value>[^\r\n]*?)[ \t]*\r?$",
    re.M | re.I,
)
_ANY_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<title>[^\r\n]*?)[ \t]*\r?$", re.M)
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)
# Sections whose `Status:` lines describe the story itself (not QA notes or a dev log).
_HEADER_SECTIONS = {"", "metadata", "storyinformation", "storyinfo", "overview", "storydetails"}
_PREFIX = re.compile(
    rf"^(?:[ \t]|[*_`\"'“”‘’]|<[^>\r\n]*>|{_LABEL}[*_]*[ \t]*[:：])*",
    re.I,
)


@dataclass(frozen=True)
class _Declaration:
    """One place a story declares its Status: the value's span in the text."""

    raw: str
    start: int
    end: int
    rank: int  # 0 heading, 1 label line, 2 front matter


@dataclass(frozen=True)
class StoryStatus:
    """A story's Status: the workflow state (or `unknown`), and the raw text it was read from.

    `raw` is None when the file declares no Status at all (state `unknown` too: a file with
    no Status says nothing about where the story stands).
    """

    state: WorkflowState | Literal["unknown"]
    raw: str | None
    declarations: tuple[_Declaration, ...] = ()

    @property
    def known(self) -> bool:
        """Whether the Status is a workflow state."""
        return self.state != UNKNOWN


def clean_status(raw: str) -> str:
    """The value of a Status declaration without its decorations.

    Bold, code, quotes, HTML, emoji, a repeated label (`Status: Done`) and trailing commentary
    (` - merged`, ` — 2025-09-18`, `(all 12 tests passing)`) are removed.
    """
    value = re.sub(r"<!--.*?-->|<[^>]*>", "", raw)
    value = strip_symbols(value)
    value = _PREFIX.sub("", value)
    value = re.split(r"\s+[-—–]\s+|\s*\(|\s+—|\s+--\s+", value, maxsplit=1)[0]
    value = re.sub(r"[*_`\"'“”‘’]", "", value)
    return value.strip().rstrip(".,;:!").strip()


def parse_state(raw: str | None) -> WorkflowState | Literal["unknown"]:
    """Map a raw Status value to a workflow state; anything else is `unknown`."""
    if raw is None:
        return UNKNOWN
    value = clean_status(raw)
    if not value or re.search(r"[|/{}\[\]]", value):
        return UNKNOWN  # empty, a table of states, alternatives, a template placeholder
    return _STATE_BY_KEY.get(fold(value), UNKNOWN)


def normalise_status(value: str | None) -> WorkflowState | None:
    """`In Progress` == `InProgress`; `Ready for Review` is review; unknown values are None."""
    state = parse_state(value)
    return None if state == UNKNOWN else state  # type: ignore[return-value]


def _outside_fences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of `text` that are not inside ``` or ~~~ code fences."""
    spans, position, inside = [], 0, False
    for fence in _FENCE.finditer(text):
        if not inside:
            spans.append((position, fence.start()))
        else:
            position = text.find("\n", fence.end())
            position = len(text) if position < 0 else position
        inside = not inside
    if not inside:
        spans.append((position, len(text)))
    return spans


def _in(spans: list[tuple[int, int]], index: int) -> bool:
    return any(start <= index < end for start, end in spans)


def nested_states(text: str) -> dict[WorkflowState, str]:
    """The workflow states (with their words) of Status headings nested in another section
    (`### Status` under `## Dev Agent Record`): not the story's own, but an agent that moved
    that one instead of the story's leaves the two disagreeing, and then where the story
    stands is unknown."""
    found = _declarations(text.removeprefix("\ufeff"), nested=True)
    states = {d.raw.strip(): parse_state(d.raw) for d in found}
    return {state: raw for raw, state in states.items() if state != UNKNOWN}


def _declarations(text: str, *, nested: bool = False) -> list[_Declaration]:
    """Every top-level Status declaration, in order, with the rank of its form (`nested`: the
    Status headings inside other sections instead)."""
    spans = _outside_fences(text)
    headings = [m for m in _ANY_HEADING.finditer(text) if _in(spans, m.start())]
    found: list[_Declaration] = []
    for match in _HEADING.finditer(text):
        if not _in(spans, match.start()):
            continue
        level = len(match.group("hashes"))
        parents = [
            h for h in headings if h.start() < match.start() and 1 < len(h.group("hashes")) < level
        ]
        if bool(parents and level > 2) != nested:
            continue  # `### Status` under `## Dev Agent Record` is a note, not the story's
        if match.group("inline"):
            found.append(
                _Declaration(match.group("inline"), match.start("inline"), match.end("inline"), 0)
            )
            continue
        found.extend(_value_under_heading(text, match.end()))
    if nested:
        return found
    for match in _LABEL_LINE.finditer(text):
        if not _in(spans, match.start()) or not match.group("value"):
            continue
        section = _section_title(headings, match.start())
        if fold(section) in _HEADER_SECTIONS or re.fullmatch(_LABEL, section.strip("*_ "), re.I):
            found.append(
                _Declaration(match.group("value"), match.start("value"), match.end("value"), 1)
            )
    front = re.match(r"^---[ \t]*\r?\n(?P<body>.*?)^---[ \t]*\r?$", text, re.S | re.M)
    if front is not None:
        line = re.search(r"^status[ \t]*:[ \t]*(?P<value>[^\r\n]*?)[ \t]*\r?$", front["body"], re.M)
        if line is not None and line.group("value"):
            offset = front.start("body")
            found.append(
                _Declaration(
                    line.group("value"), offset + line.start("value"), offset + line.end("value"), 2
                )
            )
    return sorted(found, key=lambda d: (d.rank, d.start))


def _value_under_heading(text: str, position: int) -> list[_Declaration]:
    """The first line of text under a bare Status heading (none if the section is empty)."""
    for line in re.finditer(r"^[^\r\n]*", text[position:], re.M):
        content = line.group().strip()
        if not content:
            continue
        if content.startswith("#"):
            return []
        start = position + line.start() + line.group().index(content)
        bullet = re.match(r"^[-*+][ \t]+", content)
        if bullet:
            start += bullet.end()
            content = content[bullet.end() :]
        return [_Declaration(content, start, start + len(content), 0)]
    return []


def _section_title(headings: list[re.Match[str]], index: int) -> str:
    """The title of the `##`-or-deeper section `index` is in ("" before any)."""
    title = ""
    for heading in headings:
        if heading.start() > index:
            break
        if len(heading.group("hashes")) > 1:
            title = heading.group("title")
    return title


def read_story_status(text: str) -> StoryStatus:
    """The story's Status from the strongest form it uses: a Status heading, then `Status:`
    lines at the top of the story, then front matter. Disagreeing declarations: `unknown`."""
    declarations = _declarations(text.removeprefix("\ufeff"))
    if not declarations:
        return StoryStatus(UNKNOWN, None)
    best = declarations[0].rank
    chosen = tuple(d for d in declarations if d.rank == best)
    states = {parse_state(d.raw) for d in chosen}
    raw = " | ".join(dict.fromkeys(d.raw.strip() for d in chosen))
    state = states.pop() if len(states) == 1 else UNKNOWN
    return StoryStatus(state, raw, chosen)


def read_status(text: str) -> str | None:
    """The story's Status as written, decorations removed (None when it declares none)."""
    status = read_story_status(text)
    if status.raw is None:
        return None
    return clean_status(status.declarations[0].raw) or None


def set_status(path: Path, value: str) -> None:
    """Rewrite the Status the story declares, in its own form; every other byte stays.

    Each declaration that was read keeps its label, heading and emphasis (`**Status:** Draft`
    becomes `**Status:** Approved`); emoji and trailing commentary of the old value go. A story
    without any gets a `## Status` section after its title. Written atomically; CRLF, a BOM and
    a missing final newline are kept.
    """
    data = path.read_bytes()
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    text = data.decode("utf-8-sig")
    nl = "\r\n" if "\r\n" in text else "\n"
    status = read_story_status(text)
    if not status.declarations:
        title = re.search(r"^# [^\r\n]*", text, re.M)
        at = title.end() if title else 0
        # After a title the text already goes on with its own line break.
        heading = (
            f"{nl}{nl}## Status{nl}{nl}{value}" if title else f"## Status{nl}{nl}{value}{nl}{nl}"
        )
        updated = f"{text[:at]}{heading}{text[at:]}"
    else:
        updated = text
        for declaration in sorted(status.declarations, key=lambda d: d.start, reverse=True):
            replacement = _restyled(declaration.raw, value)
            updated = f"{updated[: declaration.start]}{replacement}{updated[declaration.end :]}"
    write_atomic(path, (bom + updated).encode())


def _restyled(raw: str, value: str) -> str:
    """`value` in the form of `raw`: its label and emphasis kept, its decorations dropped."""
    bare = strip_symbols(raw).lstrip()
    prefix = _PREFIX.match(bare)
    kept = prefix.group() if prefix else ""
    unclosed: list[str] = []  # emphasis opened in the prefix and not closed there
    for run in re.findall(r"\*+|_+|`+", kept):
        if unclosed and unclosed[-1] == run:
            unclosed.pop()
        else:
            unclosed.append(run)
    return f"{kept}{value}{''.join(reversed(unclosed))}" if kept.strip() else value
