"""The PO's verdict: Decision lines in a validation report (or the story), and the Change Log
row the orchestrator adds when it approves a story."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from orchestrator.files import write_atomic
from orchestrator.methods.bmad_v4.paths import BmadPaths
from orchestrator.methods.bmad_v4.text import strip_symbols

PoDecision = Literal["GO", "NO-GO", "CONDITIONAL GO"]


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
    value = strip_symbols(re.sub(r"[*_`|]", " ", raw)).strip()
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
