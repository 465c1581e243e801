"""QA gates: gate files (names, places, verdict keys, broken YAML) and `Gate:` lines.

QA writes its verdict twice, the gate file and a `Gate:` line in the story's QA Results, in
either order; real gates keep the verdict under several keys and 5 % of them are not valid YAML.
A verdict that is none of the four reads as `unknown`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from orchestrator.methods.base import UNKNOWN
from orchestrator.methods.bmad_v4.names import find_story_file
from orchestrator.methods.bmad_v4.paths import BmadPaths
from orchestrator.methods.bmad_v4.text import digest, mtime_ns, read_text

GATE_VALUES = ("PASS", "CONCERNS", "FAIL", "WAIVED")


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
    named = _named_story(path)
    return named is not None and named == story_id.lower()


_NAMED: dict[Path, tuple[tuple[int, int, int, int], str | None]] = {}
_NAMED_MAX = 4096


def _named_story(path: Path) -> str | None:
    """The quoted `story:` id a gate file names (lower case), read once per version of the file.

    Every waiting QA stage looks through the whole gates folder on each change; without this,
    each look would read every other story's gate again.
    """
    try:
        info = path.stat()
    except OSError:
        return None
    version = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    cached = _NAMED.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    try:
        head = path.read_text(errors="replace")[:2000]
    except OSError:
        return None
    match = re.search(r"^story[ \t]*:[ \t]*(['\"])(?P<id>[^'\"\r\n]+)\1", head, re.M)
    named = match.group("id").strip().lower() if match else None
    if len(_NAMED) >= _NAMED_MAX:
        _NAMED.clear()
    _NAMED[path] = (version, named)
    return named


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
        mtime = mtime_ns(path)
        if mtime >= since_ns:
            dated.append((mtime, path))
    for mtime, path in sorted(dated, reverse=True):
        if unchanged and unchanged.get(str(path)) == digest(path):
            continue  # the same bytes as before the stage: not this stage's gate
        value = read_gate_file(path)
        if value is not None:
            return Gate(value, path, mtime, gate_raw(path))  # type: ignore[arg-type]
    story_file = find_story_file(paths.stories, story_id)
    if story_file is None or mtime_ns(story_file) < since_ns:
        return None
    try:
        gates = read_story_gates(read_text(story_file))
    except (OSError, UnicodeDecodeError):
        return None
    if len(gates) <= story_gates_before:
        return None
    value, named = gates[-1]
    if named is None:
        return Gate(value, story_file, mtime_ns(story_file), value)  # type: ignore[arg-type]
    named_file = resolve_gate_path(paths, story_file, named)
    named_mtime = mtime_ns(named_file)
    named_value = read_gate_file(named_file)
    if named_value is None or named_mtime < since_ns:
        return None
    if unchanged and unchanged.get(str(named_file)) == digest(named_file):
        return None
    return Gate(named_value, named_file, named_mtime, gate_raw(named_file))  # type: ignore[arg-type]


def newest_gate(paths: BmadPaths, story_id: str) -> Gate | None:
    """The story's newest gate file with a verdict (for `status`), whatever its age."""
    gates = sorted(gate_files(paths, story_id), key=mtime_ns, reverse=True)
    for path in gates:
        value = read_gate_file(path)
        if value is not None:
            return Gate(value, path, mtime_ns(path), gate_raw(path))  # type: ignore[arg-type]
    return None
