"""BMad v4 project knowledge: where files live and how to read what real agents wrote.

Agents drift from the templates all the time (see the catalogue in the reference material), so
the readers here are lenient about form (any heading level, inline, bold, emoji, trailing
commentary, CRLF, a BOM) and strict about meaning: a value that is not a workflow state, or two
declarations that disagree, read as `unknown` with the raw text kept, never as a guess. A file
that cannot be read yet means "not done", never a crash: agents write in several pieces.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal

import yaml

from orchestrator.errors import ProjectError
from orchestrator.files import write_atomic

CONFIG_FILE = Path(".bmad-core") / "core-config.yaml"
MANIFEST_FILE = Path(".bmad-core") / "install-manifest.yaml"
DEFAULT_STORIES = "docs/stories"
DEFAULT_QA = "docs/qa"
DEFAULT_SLASH_PREFIX = "BMad"
GATE_VALUES = ("PASS", "CONCERNS", "FAIL", "WAIVED")
UNKNOWN: Final = "unknown"
PoDecision = Literal["GO", "NO-GO", "CONDITIONAL GO"]


class BmadConfigError(ProjectError):
    """The project's core-config.yaml exists but cannot be used."""


# --- paths ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BmadPaths:
    """The folders a BMad v4 project keeps its stories and QA output in (absolute)."""

    root: Path
    stories: Path
    qa: Path
    slash_prefix: str = DEFAULT_SLASH_PREFIX
    config: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def gates(self) -> Path:
        return self.qa / "gates"

    @property
    def assessments(self) -> Path:
        return self.qa / "assessments"

    @property
    def gate_dirs(self) -> tuple[Path, ...]:
        """Where real QA agents put gate files: the configured folder first, then the places
        agents reach by taking `qa.qaLocation/gates` literally or by writing into .bmad-core."""
        return (
            self.gates,
            self.root / "qa" / "qaLocation" / "gates",
            self.root / "qa.qaLocation" / "gates",
            self.root / ".bmad-core" / "qa" / "gates",
        )

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
            config=config,
        )

    def relative(self, path: Path) -> str:
        """`path` relative to the project root when it is inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)


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


def installed_version(root: Path) -> str | None:
    """The BMad version `install-manifest.yaml` records, if it can be read."""
    try:
        data = yaml.safe_load((Path(root) / MANIFEST_FILE).read_text())
    except (OSError, yaml.YAMLError, RecursionError, UnicodeDecodeError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return str(version) if version is not None else None


def version_tuple(version: str) -> tuple[int, ...] | None:
    """`4.44.3` -> (4, 44, 3); None when it is not a dotted version."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


# --- reading files the way agents write them ---------------------------------------------------


def read_text(path: Path) -> str:
    """A text file as written: a UTF-8 BOM is dropped, line endings are kept as they are."""
    return path.read_bytes().decode("utf-8-sig")


def digest(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _mtime_or_zero(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _fold(value: str) -> str:
    """Lower case, accents and everything but letters and digits removed: a synonym key."""
    decomposed = unicodedata.normalize("NFKD", value.lower())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def _strip_symbols(value: str) -> str:
    """Emoji, check marks and other pictographs removed (✅ Done, Done ✓, 🚧 WIP)."""
    return "".join(
        ch
        for ch in value
        if ch.isascii()
        or (unicodedata.category(ch) not in ("So", "Sk", "Cs", "Co") and ch not in "\ufe0f\u200d")
    )


# --- story files ---------------------------------------------------------------------------------


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
    return max(found, key=_mtime_or_zero) if found else None


def _story_files(folder: Path, story_id: str) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if story_name_matches(p.name, story_id) and p.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def slugify(title: str) -> str:
    """BMad's gate-file slug: lowercase, spaces to hyphens, punctuation stripped."""
    words = re.sub(r"[^a-z0-9\s-]", "", title.lower()).split()
    return re.sub(r"-{2,}", "-", "-".join(words)).strip("-") or "story"


# --- Status --------------------------------------------------------------------------------------


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
        return self.state != UNKNOWN


def clean_status(raw: str) -> str:
    """The value of a Status declaration without its decorations.

    Bold, code, quotes, HTML, emoji, a repeated label (`Status: Done`) and trailing commentary
    (` - merged`, ` — 2025-09-18`, `(all 12 tests passing)`) are removed.
    """
    value = re.sub(r"<!--.*?-->|<[^>]*>", "", raw)
    value = _strip_symbols(value)
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
    return _STATE_BY_KEY.get(_fold(value), UNKNOWN)


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


def _declarations(text: str) -> list[_Declaration]:
    """Every top-level Status declaration, in order, with the rank of its form."""
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
        if parents and level > 2:
            continue  # `### Status` under `## Dev Agent Record` is a note, not the story's
        if match.group("inline"):
            found.append(
                _Declaration(match.group("inline"), match.start("inline"), match.end("inline"), 0)
            )
            continue
        found.extend(_value_under_heading(text, match.end()))
    for match in _LABEL_LINE.finditer(text):
        if not _in(spans, match.start()) or not match.group("value"):
            continue
        section = _section_title(headings, match.start())
        if _fold(section) in _HEADER_SECTIONS or re.fullmatch(_LABEL, section.strip("*_ "), re.I):
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
    bare = _strip_symbols(raw).lstrip()
    prefix = _PREFIX.match(bare)
    kept = prefix.group() if prefix else ""
    unclosed: list[str] = []  # emphasis opened in the prefix and not closed there
    for run in re.findall(r"\*+|_+|`+", kept):
        if unclosed and unclosed[-1] == run:
            unclosed.pop()
        else:
            unclosed.append(run)
    return f"{kept}{value}{''.join(reversed(unclosed))}" if kept.strip() else value


# --- PO decisions --------------------------------------------------------------------------------

# `Decision: GO`, `**Decision:** ✅ GO`, `### Decision: GO`, `PO Decision: NO-GO`,
# `Final Assessment: NO-GO`, `| Decision | GO |`, `Decision: CONDITIONAL GO`.
_DECISION = re.compile(
    r"^[ \t>*_|#-]*(?:PO[ \t]+|Final[ \t]+)?(?:Decision|Assessment|Verdict)[*_]*[ \t]*[:|][ \t]*"
    r"(?P<value>[^\r\n]*)",
    re.M | re.I,
)
_DECISION_HEADING = re.compile(
    r"^#{1,6}[ \t]*[*_]*(?:PO[ \t]+|Final[ \t]+)?Decision[*_]*[ \t]*\r?\n(?:[ \t]*\r?\n)*"
    r"(?P<value>[^\r\n#][^\r\n]*)",
    re.M | re.I,
)


def _decision_value(raw: str) -> tuple[PoDecision, str] | None:
    """The verdict of a decision line's value, and the words after it (conditions)."""
    value = _strip_symbols(re.sub(r"[*_`|]", " ", raw)).strip()
    match = re.match(
        r"^(?P<verdict>CONDITIONAL[ \t-]+GO|NO[ \t-]?GO|GO)\b(?P<rest>.*)$", value, re.I | re.S
    )
    if match is None:
        return None
    verdict = re.sub(r"[\s-]+", " ", match.group("verdict").upper())
    rest = match.group("rest").strip(" \t:-—–()")
    if verdict == "NO GO":
        return "NO-GO", rest
    if verdict.startswith("CONDITIONAL") or re.match(r"^\(?\s*conditional", rest, re.I):
        return "CONDITIONAL GO", rest
    return "GO", rest


def read_po_decisions(text: str) -> list[PoDecision]:
    """Every decision line in the text, in order (the last one is the verdict)."""
    return [verdict for verdict, _ in read_po_decision_lines(text)]


def read_po_decision_lines(text: str) -> list[tuple[PoDecision, str]]:
    """Every decision in the text, in order, each with the words after its verdict."""
    found: list[tuple[int, tuple[PoDecision, str]]] = []
    for pattern in (_DECISION, _DECISION_HEADING):
        for match in pattern.finditer(text):
            decision = _decision_value(match.group("value"))
            if decision is not None:
                found.append((match.start(), decision))
    return [decision for _, decision in sorted(found, key=lambda item: item[0])]


def po_report_files(paths: BmadPaths, story_id: str) -> list[Path]:
    """The story's PO validation reports: `{qa}/assessments/{id}-po-validation-*.md`."""
    try:
        entries = list(paths.assessments.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    prefix = f"{story_id}-po-validation".lower()
    return [p for p in entries if p.name.lower().startswith(prefix) and p.suffix == ".md"]


def po_report_path(paths: BmadPaths, story_id: str, when: datetime | None = None) -> Path:
    """Where the PO is asked to save today's report."""
    day = (when or datetime.now(UTC)).strftime("%Y%m%d")
    return paths.assessments / f"{story_id}-po-validation-{day}.md"


def conditions_of(text: str, after_verdict: str) -> list[str]:
    """The conditions of a CONDITIONAL GO: the words after it, and a Conditions section."""
    conditions = [after_verdict] if after_verdict else []
    section = re.search(
        r"^#{1,6}[ \t]*[*_]*Conditions?\b[^\r\n]*\r?\n(?P<body>.*?)(?=^#|\Z)",
        text,
        re.M | re.S | re.I,
    )
    if section is not None:
        conditions += [
            line.strip()[1:].strip()
            for line in section["body"].splitlines()
            if line.strip()[:1] in ("-", "*", "+")
        ]
    return conditions


# --- QA gates ------------------------------------------------------------------------------------

GateVerdict = Literal["PASS", "CONCERNS", "FAIL", "WAIVED", "unknown"]
_VERDICT_KEYS = ("gate", "decision", "gate_decision", "gate_status", "status")
_VERDICTS = {
    "PASS": "PASS",
    "PASSED": "PASS",
    "APPROVED": "PASS",
    "CONCERNS": "CONCERNS",
    "PASS_WITH_CONCERNS": "CONCERNS",
    "PASSWITHCONCERNS": "CONCERNS",
    "FAIL": "FAIL",
    "FAILED": "FAIL",
    "WAIVED": "WAIVED",
}


@dataclass(frozen=True)
class Gate:
    """A QA verdict (`unknown` when it is none of the four), where it was read, and when."""

    value: GateVerdict
    path: Path
    mtime_ns: int
    raw: str = ""


def gate_verdict(raw: object) -> GateVerdict:
    """`PASS`, `"PASS" # PASS|CONCERNS|FAIL|WAIVED`, `Passed`, `PASS with CONCERNS`..."""
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        return UNKNOWN
    value = re.sub(r"\s+#.*$", "", str(raw)).strip().strip("\"'`*_ ").upper()
    value = re.sub(r"[\s-]+", "_", value)
    return _VERDICTS.get(value, UNKNOWN)  # type: ignore[return-value]


def gate_file_matches(name: str, story_id: str) -> bool:
    """`{id}-{slug}.yml`, `{id}.yml`, `epic{E}.story{S}-{slug}.yml`; `.yaml` too."""
    lowered = name.lower()
    if not lowered.endswith((".yml", ".yaml")):
        return False
    stem = lowered.rsplit(".", 1)[0]
    wanted = story_id.lower()
    epic, _, number = wanted.partition(".")
    candidates = [wanted] + ([f"epic{epic}.story{number}"] if number else [])
    return any(stem == c or stem.startswith(c + "-") for c in candidates)


def gate_files(paths: BmadPaths | Path, story_id: str) -> list[Path]:
    """The gate files of `story_id` (any age, valid or not), in every folder agents use."""
    folders = paths.gate_dirs if isinstance(paths, BmadPaths) else (Path(paths),)
    found: list[Path] = []
    for folder in folders:
        for candidate in (folder, folder / story_id):
            try:
                entries = list(candidate.iterdir())
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if not entry.is_file():
                    continue
                yaml_file = entry.suffix in (".yml", ".yaml")
                in_story_folder = candidate == folder / story_id
                if gate_file_matches(entry.name, story_id) or (
                    yaml_file and (in_story_folder or _names_story(entry, story_id))
                ):
                    found.append(entry)
    return found


def _names_story(path: Path, story_id: str) -> bool:
    """A gate named without an id (`{slug}.yml`) whose `story:` is this id, quoted.

    `story: 1.10` unquoted is the number 1.1 to YAML, so only a string counts.
    """
    try:
        head = path.read_text(errors="replace")[:2000]
    except OSError:
        return False
    match = re.search(r"^story[ \t]*:[ \t]*(['\"])(?P<id>[^'\"\r\n]+)\1", head, re.M)
    return match is not None and match.group("id").strip().lower() == story_id.lower()


def read_gate_file(path: Path) -> str | None:
    """The verdict of a gate file (`unknown` for an invented one); None while it has none."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError):
        return None
    return read_gate_text(text)


def read_gate_text(text: str) -> str | None:
    """The verdict of a gate file's text; YAML that does not parse is read line by line."""
    if not text.strip():
        return None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return _verdict_from_lines(text)
    if not isinstance(data, dict):
        return _verdict_from_lines(text)
    for key in _VERDICT_KEYS:
        value = data.get(key)
        if isinstance(value, dict):  # `gate: {decision: PASS}`
            nested = ("decision", "status", "value", "gate")
            value = next((value[k] for k in nested if k in value), None)
        if value is not None:
            return gate_verdict(value)
    return None


def gate_raw(path: Path) -> str:
    """The verdict text as written (for messages about an `unknown` verdict)."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError):
        return ""
    for key in _VERDICT_KEYS:
        match = re.search(rf"^[ \t]*{key}[ \t]*:[ \t]*([^\r\n]+?)[ \t]*\r?$", text, re.M)
        if match is not None and match.group(1).strip():
            return match.group(1).strip()
    return ""


def _verdict_from_lines(text: str) -> str | None:
    """`gate: PASS` found line by line in a file YAML refuses (`\\'` in quotes, bad indent)."""
    lines = text.splitlines()
    for key in _VERDICT_KEYS:
        for index, line in enumerate(lines):
            match = re.match(rf"^(?P<indent>[ \t]*){key}[ \t]*:[ \t]*(?P<value>.*)$", line)
            if match is None:
                continue
            value = match.group("value").strip()
            if not value and key == "gate":  # a nested mapping: look at its lines
                for nested in lines[index + 1 : index + 6]:
                    inner = re.match(r"^[ \t]+(?:decision|status|value)[ \t]*:[ \t]*(.+)$", nested)
                    if inner:
                        return gate_verdict(inner.group(1))
                continue
            if value:
                return gate_verdict(value)
    return None


# `Gate: PASS → path`, `Gate: **PASS** → path`, `**Gate: PASS** ✅ → path`, `- Gate: FAIL -> x`,
# the path in backticks or a Markdown link, `qa.qaLocation/gates/...` left unresolved.
_GATE_LINE = re.compile(
    r"\bgate(?:[ \t]+status)?[*_`]*[ \t]*[:：][ \t]*[*_`]*[ \t]*"
    r"(?P<value>PASS(?:ED)?(?:[ \t_]+WITH[ \t_]+CONCERNS)?|CONCERNS|FAIL(?:ED)?|WAIVED|APPROVED"
    r"|[A-Z][A-Z_]{2,})\b[*_`]*"
    r"(?P<tail>[^\r\n]*)",
    re.I,
)
_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def read_story_gates(text: str) -> list[tuple[GateVerdict, str | None]]:
    """Every `Gate: VALUE [→ path]` line in the story, oldest first (path as written)."""
    found: list[tuple[GateVerdict, str | None]] = []
    for match in _GATE_LINE.finditer(text):
        tail = match.group("tail")
        path: str | None = None
        arrow = re.search(r"(?:→|->|=>)\s*(?P<rest>.+)$", tail)
        if arrow is not None:
            rest = arrow.group("rest").strip()
            link = _LINK.search(rest)
            path = link.group("target") if link else rest.strip("`*_ |").split()[0].strip("`")
        found.append((gate_verdict(match.group("value")), path))
    return found


def resolve_gate_path(paths: BmadPaths, story_file: Path | None, written: str) -> Path:
    """A gate path from a story line: `qa.qaLocation/...` mapped, links relative to the story."""
    written = written.strip()
    for unresolved in ("qa.qaLocation/", "{qa.qaLocation}/", "qa/qaLocation/"):
        if written.startswith(unresolved):
            return paths.qa / written[len(unresolved) :]
    candidate = Path(written)
    if candidate.is_absolute():
        return candidate
    if written.startswith(("./", "../")) and story_file is not None:
        return (story_file.parent / candidate).resolve()
    return paths.root / candidate


def find_gate(
    paths: BmadPaths,
    story_id: str,
    *,
    since_ns: int = 0,
    story_gates_before: int = 0,
    unchanged: Mapping[str, str] | None = None,
) -> Gate | None:
    """The story's newest gate written at or after `since_ns` (changed, per `unchanged`).

    Gate files win; a file's verdict may be `unknown`. The fallback is a `Gate:` line anywhere
    in the story that was not there before the stage (`story_gates_before` lines were) and names
    no gate file, or one this stage has already written (its value wins): QA writes the gate
    file and the story's QA Results in either order, and a half-done pair is not done.
    """
    dated = []
    for path in gate_files(paths, story_id):
        mtime = _mtime_or_zero(path)
        if mtime >= since_ns:
            dated.append((mtime, path))
    for mtime, path in sorted(dated, reverse=True):
        if unchanged and unchanged.get(str(path)) == digest(path):
            continue  # the same bytes as before the stage: not this stage's gate
        value = read_gate_file(path)
        if value is not None:
            return Gate(value, path, mtime, gate_raw(path))  # type: ignore[arg-type]
    story_file = find_story_file(paths.stories, story_id)
    if story_file is None or _mtime_or_zero(story_file) < since_ns:
        return None
    try:
        gates = read_story_gates(read_text(story_file))
    except (OSError, UnicodeDecodeError):
        return None
    if len(gates) <= story_gates_before:
        return None
    value, named = gates[-1]
    if named is None:
        return Gate(value, story_file, _mtime_or_zero(story_file), value)  # type: ignore[arg-type]
    named_file = resolve_gate_path(paths, story_file, named)
    named_mtime = _mtime_or_zero(named_file)
    named_value = read_gate_file(named_file)
    if named_value is None or named_mtime < since_ns:
        return None
    if unchanged and unchanged.get(str(named_file)) == digest(named_file):
        return None
    return Gate(named_value, named_file, named_mtime, gate_raw(named_file))  # type: ignore[arg-type]


def newest_gate(paths: BmadPaths, story_id: str) -> Gate | None:
    """The story's newest gate file with a verdict (for `status`), whatever its age."""
    gates = sorted(gate_files(paths, story_id), key=_mtime_or_zero, reverse=True)
    for path in gates:
        value = read_gate_file(path)
        if value is not None:
            return Gate(value, path, _mtime_or_zero(path), gate_raw(path))  # type: ignore[arg-type]
    return None


# --- Change Log ----------------------------------------------------------------------------------


def add_change_log_row(path: Path, description: str, author: str) -> None:
    """Append a row to the story's Change Log table (its own columns), or add the section."""
    data = path.read_bytes()
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    text = data.decode("utf-8-sig")
    nl = "\r\n" if "\r\n" in text else "\n"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    section = re.search(r"^#{2,6}[ \t]*Change[ \t]*Log[^\r\n]*\r?$", text, re.M | re.I)
    table_rows: list[re.Match[str]] = []
    if section is not None:
        following = re.search(r"^#{1,6}[ \t]", text[section.end() :], re.M)
        end = section.end() + following.start() if following else len(text)
        table_rows = list(
            re.finditer(r"^[ \t]*\|[^\r\n]*\|[ \t]*\r?$", text[section.end() : end], re.M)
        )
    if section is None or len(table_rows) < 2:
        addition = (
            f"{nl}## Change Log{nl}{nl}| Date | Version | Description | Author |{nl}"
            f"|---|---|---|---|{nl}| {today} | - | {description} | {author} |{nl}"
        )
        updated = text.rstrip("\r\n") + nl + addition
    else:
        assert section is not None
        header = [c.strip().lower() for c in table_rows[0].group().strip().strip("|").split("|")]
        last = [c.strip() for c in table_rows[-1].group().strip().strip("|").split("|")]
        cells = []
        for index, column in enumerate(header):
            if "date" in column:
                cells.append(today)
            elif "version" in column:
                cells.append(_next_version(last[index] if index < len(last) else ""))
            elif "author" in column or column == "by":
                cells.append(author)
            elif any(word in column for word in ("description", "change", "summary", "notes")):
                cells.append(description)
            else:
                cells.append("")
        row = "| " + " | ".join(cells) + " |"
        at = section.end() + table_rows[-1].end()
        line_end = text.find("\n", at - 1)
        at = line_end + 1 if line_end >= 0 and line_end < at + 2 else at
        if not text[:at].endswith("\n"):
            row = nl + row
        updated = f"{text[:at]}{row}{nl}{text[at:]}"
    write_atomic(path, (bom + updated).encode())


def _next_version(last: str) -> str:
    match = re.fullmatch(r"v?(\d+)\.(\d+)", last.strip())
    if match is None:
        return "-"
    return f"{match.group(1)}.{int(match.group(2)) + 1}"
