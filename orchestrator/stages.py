"""The BMad v4 stage conventions: what each stage is told, and when its output says it is done.

| stage | prompt                                   | output valid (changed since the stage began)|
|-------|------------------------------------------|--------------------------------------------|
| sm    | `/{p}:agents:sm *draft` + YOLO, story X  | story file X exists with a Status          |
| po    | `/{p}:agents:po *validate-story-draft F` | Status Approved, or a new `Decision:` line |
| dev   | `/{p}:agents:dev *develop-story F`       | Status Review / Ready for Done, or Blocked |
| qa    | `/{p}:agents:qa *review F`               | a gate file for X with a valid `gate:`     |

Checks are pure functions of the files (the watermark and the baseline's digests), so the waiter
can re-run them on every file event and a half-written file simply means "not yet". A valid
output is half of "done": the waiter also waits for the agent's turn to end.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from orchestrator.bmad import (
    BmadPaths,
    Status,
    find_gate,
    find_story_file,
    gate_files,
    normalise_status,
    read_po_decisions,
    read_status,
    read_story_gates,
)


class Stage(StrEnum):
    SM = "sm"
    PO = "po"
    DEV = "dev"
    QA = "qa"


OUTCOMES: dict[Stage, tuple[str, ...]] = {
    Stage.SM: ("drafted",),
    Stage.PO: ("approved", "rejected"),
    Stage.DEV: ("implemented", "blocked"),
    Stage.QA: ("PASS", "CONCERNS", "FAIL", "WAIVED"),
}
PROMPT_FIELDS = ("story_id", "story_file", "slash_prefix", "stories_dir", "gates_dir", "stage")


@dataclass(frozen=True)
class StageRequest:
    """One stage run for one story; `revision` and `fix_round` pick the follow-up prompts."""

    stage: Stage
    story_id: str
    story_file: Path | None = None
    revision: bool = False  # SM again after a PO NO-GO
    fix_round: bool = False  # Dev again after a QA FAIL


@dataclass(frozen=True)
class StageBaseline:
    """What the output files held when the stage began.

    Counts cover outputs that append (decisions, gate lines); digests make "written during the
    stage" mean "changed", not only "has a newer mtime": a file written just before the stage,
    within one tick of the file system's coarse clock, must never count.
    """

    po_decisions: int = 0
    last_po_decision: str | None = None
    story_gates: int = 0
    story_digest: str | None = None
    gate_digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StageOutput:
    """A stage's outcome, and when the file that says so was written (`written_ns`)."""

    outcome: str
    story_file: Path | None
    detail: str = ""
    written_ns: int = 0


def _relative(path: Path, paths: BmadPaths) -> str:
    try:
        return str(path.resolve().relative_to(paths.root))
    except ValueError:
        return str(path)


def _story_file_text(request: StageRequest, paths: BmadPaths) -> str:
    if request.story_file is not None:
        return _relative(request.story_file, paths)
    return _relative(paths.stories / f"{request.story_id}.story.md", paths)


def prompt_fields(request: StageRequest, paths: BmadPaths) -> dict[str, str]:
    return {
        "story_id": request.story_id,
        "story_file": _story_file_text(request, paths),
        "slash_prefix": paths.slash_prefix,
        "stories_dir": _relative(paths.stories, paths),
        "gates_dir": _relative(paths.gates, paths),
        "stage": request.stage.value,
    }


SAMPLE_FIELDS = {
    "story_id": "1.1",
    "story_file": "docs/stories/1.1.story.md",
    "slash_prefix": "BMad",
    "stories_dir": "docs/stories",
    "gates_dir": "docs/qa/gates",
    "stage": "sm",
}


def check_template(template: str) -> None:
    """Raise ValueError if a prompt template would fail to render at its stage.

    Unknown `{field}`s are named; anything else `str.format` refuses (a format spec such as
    `{story_id:%}`, `{story_id.x}`, a lone brace) is found by rendering sample values now,
    not after three stages have run.
    """
    known = ", ".join("{" + f + "}" for f in PROMPT_FIELDS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        hint = "write a literal brace as {{ or }}"
        raise ValueError(f"cannot be rendered: {exc} ({hint})") from None
    for _, name, _, _ in parsed:
        if name is not None and name not in PROMPT_FIELDS:
            raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
    try:
        template.format_map(SAMPLE_FIELDS)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot be rendered: {type(exc).__name__}: {exc}") from None


def render_prompt(template: str, request: StageRequest, paths: BmadPaths) -> str:
    """A user's prompt template with `{story_id}`, `{story_file}`, ... filled in."""
    check_template(template)
    return template.format_map(prompt_fields(request, paths))


UNATTENDED = (
    "You are running unattended inside an automated BMad pipeline: nobody will answer questions. "
    "Use YOLO mode for every checklist and never wait for input."
)


def default_prompt(request: StageRequest, paths: BmadPaths) -> str:
    """The BMad v4 prompt for a stage: the agent's slash command and star command in one message."""
    f = prompt_fields(request, paths)
    p = f["slash_prefix"]
    if request.stage is Stage.SM:
        head = f"/{p}:agents:sm *draft"
        task = (
            f"Draft story {f['story_id']} now and write it to {f['story_file']} with Status Draft. "
            f"Do not draft any other story and do not ask to override incomplete stories."
        )
        if request.revision:
            task = (
                f"Revise story {f['story_id']} in {f['story_file']} per the findings in its "
                f"## PO Validation section: fix every issue listed there, remove that section, "
                f"and keep Status Draft."
            )
    elif request.stage is Stage.PO:
        head = f"/{p}:agents:po *validate-story-draft {f['story_file']}"
        task = (
            f"When the validation is complete, append to {f['story_file']} a section "
            f"'## PO Validation' containing the line 'Decision: GO' or 'Decision: NO-GO' "
            f"followed by your reasons. Do not change anything else in the story."
        )
    elif request.stage is Stage.DEV:
        command = "*review-qa" if request.fix_round else "*develop-story"
        head = f"/{p}:agents:dev {command} {f['story_file']}"
        task = (
            f"Apply the fixes from the latest QA gate in {f['gates_dir']}/{f['story_id']}-*.yml. "
            if request.fix_round
            else "Implement every task of the story. "
        )
        task += (
            "When finished set the story's Status to 'Ready for Review'; if you cannot "
            "continue, set it to 'Blocked' and explain why in the Dev Agent Record."
        )
    else:
        head = f"/{p}:agents:qa *review {f['story_file']}"
        task = (
            f"Write the QA Results section and the gate file "
            f"{f['gates_dir']}/{f['story_id']}-<slug>.yml with gate PASS, CONCERNS, FAIL or "
            f"WAIVED. Do not change the story's Status."
        )
    return f"{head}\n\n{task} {UNATTENDED}"


def nudge_prompt(request: StageRequest, paths: BmadPaths) -> str:
    """What to type when the agent stopped (or asked) before writing the stage's output."""
    f = prompt_fields(request, paths)
    output = {
        Stage.SM: f"story {f['story_id']} to {f['story_file']} with its Status",
        Stage.PO: f"your 'Decision: GO' or 'Decision: NO-GO' line for {f['story_file']}",
        Stage.DEV: (
            f"the Status 'Ready for Review' in {f['story_file']} (or 'Blocked' with the reason "
            "in the Dev Agent Record)"
        ),
        Stage.QA: (
            f"the gate file {f['gates_dir']}/{f['story_id']}-<slug>.yml and the QA Results "
            f"entry in {f['story_file']}"
        ),
    }[request.stage]
    return (
        "Do not ask: nobody will answer in this unattended run. Continue in YOLO mode, decide "
        f"yourself, and finish by writing {output}."
    )


# --- completion ---------------------------------------------------------------------------------


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Story:
    path: Path
    text: str
    written_ns: int


def _fresh_story(
    request: StageRequest, paths: BmadPaths, since_ns: int, baseline: StageBaseline
) -> _Story | None:
    """The story file if this stage changed it: newer than the watermark and other content."""
    path = find_story_file(paths.stories, request.story_id)
    if path is None:
        return None
    try:
        written = path.stat().st_mtime_ns
        if written < since_ns:
            return None
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if digest(data) == baseline.story_digest:
        return None
    try:
        return _Story(path, data.decode(), written)
    except UnicodeDecodeError:
        return None


def take_baseline(request: StageRequest, paths: BmadPaths) -> StageBaseline:
    """What the story and its gates hold before the stage starts."""
    gates = {str(p): digest(p.read_bytes()) for p in gate_files(paths.gates, request.story_id)}
    path = find_story_file(paths.stories, request.story_id)
    if path is None:
        return StageBaseline(gate_digests=gates)
    data = path.read_bytes()
    text = data.decode()
    decisions = read_po_decisions(text)
    return StageBaseline(
        po_decisions=len(decisions),
        last_po_decision=decisions[-1] if decisions else None,
        story_gates=len(read_story_gates(text)),
        story_digest=digest(data),
        gate_digests=gates,
    )


def check_stage_output(
    request: StageRequest,
    paths: BmadPaths,
    *,
    since_ns: int,
    baseline: StageBaseline = StageBaseline(),
) -> StageOutput | None:
    """The stage's outcome if its output (written at or after `since_ns`) says it is done."""
    if request.stage is Stage.QA:
        gate = find_gate(
            paths,
            request.story_id,
            since_ns=since_ns,
            story_gates_before=baseline.story_gates,
            unchanged=baseline.gate_digests,
        )
        if gate is None:
            return None
        return StageOutput(
            gate.value,
            find_story_file(paths.stories, request.story_id),
            str(gate.path),
            gate.mtime_ns,
        )
    story = _fresh_story(request, paths, since_ns, baseline)
    if story is None:
        return None
    text, written = story.text, story.written_ns
    status = normalise_status(read_status(text))
    if request.stage is Stage.SM:
        return StageOutput("drafted", story.path, written_ns=written) if read_status(text) else None
    if request.stage is Stage.PO:
        decisions = read_po_decisions(text)
        # A new Decision line, or the PO rewrote the old one in place with the other verdict.
        if decisions and (
            len(decisions) > baseline.po_decisions or decisions[-1] != baseline.last_po_decision
        ):
            verdict = decisions[-1]
            outcome = "approved" if verdict == "GO" else "rejected"
            return StageOutput(outcome, story.path, verdict, written)
        if status is Status.APPROVED:
            return StageOutput("approved", story.path, "Status Approved", written)
        return None
    if status in (Status.REVIEW, Status.READY_FOR_DONE):
        return StageOutput("implemented", story.path, read_status(text) or "", written)
    if status is Status.BLOCKED:
        return StageOutput("blocked", story.path, "Status Blocked", written)
    return None


def watch_dirs(request: StageRequest, paths: BmadPaths) -> list[Path]:
    """The folders whose changes can complete the stage."""
    if request.stage is Stage.QA:
        return [paths.stories, paths.gates]
    return [paths.stories]
