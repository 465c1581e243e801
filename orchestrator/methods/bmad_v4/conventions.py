"""The BMad v4 stage conventions: what each stage is told, and when its output says it is done.

Outputs count only when changed since the stage began:
- sm: `/{p}:agents:sm *draft` + YOLO, story X -> story file X with a Status.
- po: `/{p}:agents:po *validate-story-draft F` + save the report under qa/assessments -> a PO
  report with a Decision line (or a new Decision line in the story, or Status Approved).
- dev: `/{p}:agents:dev *develop-story F` -> Status review (Ready for Review...) or Blocked.
- qa: `/{p}:agents:qa *review F` -> a gate for X with a verdict (an unknown one is invalid).

Checks are pure functions of the files (the watermark and the baseline's digests), so the waiter
can re-run them on every file event and a half-written file simply means "not yet". A valid
output is half of "done": the waiter also waits for the agent's turn to end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.methods.base import (
    UNKNOWN,
    Baseline,
    StageOutput,
    StageRequest,
    check_template,
)
from orchestrator.methods.bmad_v4 import activation
from orchestrator.methods.bmad_v4.gates import find_gate, gate_files, read_story_gates
from orchestrator.methods.bmad_v4.names import find_story_file
from orchestrator.methods.bmad_v4.paths import BmadPaths
from orchestrator.methods.bmad_v4.po import (
    conditions_of,
    po_report_files,
    po_report_path,
    read_po_decision_lines,
)
from orchestrator.methods.bmad_v4.status import WorkflowState, read_story_status
from orchestrator.methods.bmad_v4.text import digest, read_text

# What `npx bmad-method@4 install` writes for the CLIs it supports (ide-setup.js, v4.44.3): the
# core, expansion packs, and each CLI's agent commands. Globs relative to the project root.
INSTALL_PATHS = (
    ".bmad-*",
    ".claude",
    ".gemini",
    ".qwen",
    ".iflow",
    ".crush",
    ".augment",
    ".cursor",
    ".windsurf",
    ".trae",
    ".clinerules",
    ".roomodes",
    ".kilocodemodes",
    ".github/chatmodes",
    "AGENTS.md",
    "opencode.json",
    "opencode.jsonc",
)


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
    report_digests: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The baseline as JSON, to keep on the session for an adopter."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Baseline) -> StageBaseline:
        """The baseline kept on a session (empty: nothing was there)."""
        return cls(**data) if data else cls()


def _story_file_text(request: StageRequest, paths: BmadPaths) -> str:
    if request.story_file is not None:
        return paths.relative(request.story_file)
    return paths.relative(paths.stories / f"{request.story_id}.story.md")


def prompt_fields(request: StageRequest, paths: BmadPaths) -> dict[str, str]:
    """The values a prompt template may use, for this request."""
    return {
        "story_id": request.story_id,
        "story_file": _story_file_text(request, paths),
        "slash_prefix": paths.slash_prefix,
        "stories_dir": paths.relative(paths.stories),
        "gates_dir": paths.relative(paths.gates),
        "stage": request.stage,
        "conflicts": ", ".join(request.conflicts),
        "agent": activation.AGENTS[request.stage],
        "agent_file": activation.agent_file(request.stage),
        "note": request.note or "",
    }


# The fields a user's prompt template may use, with sample values to test-render it.
SAMPLE_FIELDS = {
    "story_id": "1.1",
    "story_file": "docs/stories/1.1.story.md",
    "slash_prefix": "BMad",
    "stories_dir": "docs/stories",
    "gates_dir": "docs/qa/gates",
    "stage": "sm",
    "conflicts": "src/app.py",
    "agent": "sm",
    "agent_file": ".bmad-core/agents/sm.md",
    "note": "add a test for the empty title",
}


def render_prompt(template: str, request: StageRequest, paths: BmadPaths) -> str:
    """A user's prompt template with `{story_id}`, `{story_file}`, ... filled in."""
    check_template(template, SAMPLE_FIELDS)
    return template.format_map(prompt_fields(request, paths))


UNATTENDED = (
    "You are running unattended inside an automated BMad pipeline: nobody will answer "
    "questions. Use YOLO mode: skip every elicitation stop (elicit: true sections, numbered "
    "menus, 'select 1-9' prompts) and choose sensible answers yourself; never ask a question "
    "and never wait for input."
)


def default_prompt(request: StageRequest, paths: BmadPaths) -> str:
    """The BMad v4 prompt for a stage: the agent called up (as the CLI does it), its star
    command, and the task, in one message."""
    f = prompt_fields(request, paths)
    if request.stage == "sm":
        command = "*draft"
        task = (
            f"Draft story {f['story_id']} now and write it to {f['story_file']} with Status Draft. "
            "Do not draft any other story; if earlier stories look incomplete, do not ask to "
            "override or accept the risk: go on with this one."
        )
        if request.revision:
            findings = (
                f"in the PO validation report {paths.relative(request.findings)}"
                if request.findings is not None
                else "the PO gave (the Decision line and the reasons with it)"
            )
            task = (
                f"Revise story {f['story_id']} in {f['story_file']} per the findings {findings}: "
                "fix every issue it lists, critical ones first, keep Status Draft, and add a "
                "Change Log row for the revision. Do not ask to override anything."
            )
    elif request.stage == "po":
        command = f"*validate-story-draft {f['story_file']}"
        report = paths.relative(po_report_path(paths, request.story_id))
        task = (
            f"Save your complete validation report as {report}, ending with the line "
            "'Decision: GO' or 'Decision: NO-GO' (or 'Decision: CONDITIONAL GO' followed by the "
            "conditions). Do not change the story file."
        )
    elif request.stage == "dev":
        star = "*review-qa" if request.fix_round else "*develop-story"
        command = f"{star} {f['story_file']}"
        task = (
            f"Apply the fixes from the latest QA gate in {f['gates_dir']}/{f['story_id']}-*.yml. "
            "Run this project's own lint and test commands (its package.json scripts, Makefile, "
            "pyproject or README), not the deno commands apply-qa-fixes names. "
            if request.fix_round
            else "Implement every task of the story. "
        )
        if request.merge_from is not None:
            files = ", ".join(request.conflicts) or "no file (the merge went through)"
            task = (
                f"This story is implemented and passed QA, but it conflicts with the stories "
                f"merged before it: their branch {request.merge_from} has been merged into this "
                f"story's branch and git reports conflicts in: {files}. Resolve every conflict so "
                "that both this story's work and theirs are kept, run this project's own lint "
                "and tests, and stage the resolved files with `git add` (do not commit). "
            )
        task += (
            "When finished set the story's Status to 'Ready for Review'; if you cannot "
            "continue, set it to 'Blocked' and explain why in the Dev Agent Record."
        )
    else:
        command = f"*review {f['story_file']}"
        task = (
            f"Write both the QA Results entry in the story and the gate file "
            f"{f['gates_dir']}/{f['story_id']}-<slug>.yml with gate PASS, CONCERNS, FAIL or "
            "WAIVED. If a blocking condition stops the review (an empty File List, missing "
            "sections), do not ask: write a FAIL gate whose status_reason says why. Do not "
            "change the story's Status."
        )
    head = activation.head(request.activation, request.stage, command, paths)
    note = f"\n\nA person answered, and this round must act on it: {request.note}"
    return f"{head}\n\n{task} {UNATTENDED}{note if request.note else ''}"


def nudge_prompt(request: StageRequest, paths: BmadPaths) -> str:
    """What to type when the agent stopped (or asked) before writing the stage's output."""
    f = prompt_fields(request, paths)
    report = paths.relative(po_report_path(paths, request.story_id))
    resolved = (
        f"the merge conflicts in {f['conflicts']} resolved (git add), and "
        if request.conflicts
        else ""
    )
    output = {
        "sm": f"story {f['story_id']} to {f['story_file']} with its Status",
        "po": f"the report {report} ending with 'Decision: GO' or 'Decision: NO-GO'",
        "dev": (
            f"{resolved}the Status 'Ready for Review' in {f['story_file']} (or 'Blocked' with "
            "the reason in the Dev Agent Record)"
        ),
        "qa": (
            f"the gate file {f['gates_dir']}/{f['story_id']}-<slug>.yml and the QA Results "
            f"entry in {f['story_file']}"
        ),
    }[request.stage]
    return (
        "Do not ask: nobody will answer in this unattended run. Continue in YOLO mode, decide "
        f"yourself, and finish by writing {output}."
    )


# --- completion ---------------------------------------------------------------------------------


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
        if written < since_ns or digest(path) == baseline.story_digest:
            return None
        return _Story(path, read_text(path), written)
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def take_baseline(request: StageRequest, paths: BmadPaths) -> StageBaseline:
    """What the story, its gates and its PO reports hold before the stage starts."""
    gates = {str(p): digest(p) or "" for p in gate_files(paths, request.story_id)}
    reports = {str(p): digest(p) or "" for p in po_report_files(paths, request.story_id)}
    path = find_story_file(paths.stories, request.story_id)
    if path is None:
        return StageBaseline(gate_digests=gates, report_digests=reports)
    text = read_text(path)
    decisions = read_po_decision_lines(text)
    return StageBaseline(
        po_decisions=len(decisions),
        last_po_decision=decisions[-1][0] if decisions else None,
        story_gates=len(read_story_gates(text)),
        story_digest=digest(path),
        gate_digests=gates,
        report_digests=reports,
    )


def check_stage_output(
    request: StageRequest,
    paths: BmadPaths,
    *,
    since_ns: int,
    baseline: StageBaseline = StageBaseline(),
) -> StageOutput | None:
    """The stage's outcome if its output (changed since the stage began) says it is done."""
    if request.stage == "qa":
        return _qa_output(request, paths, since_ns, baseline)
    if request.stage == "po":
        report = _po_report_output(request, paths, since_ns, baseline)
        if report is not None:
            return report
    story = _fresh_story(request, paths, since_ns, baseline)
    if story is None:
        return None
    status = read_story_status(story.text)
    written = story.written_ns
    if request.stage == "sm":
        return StageOutput("drafted", story.path, written_ns=written) if status.raw else None
    if request.stage == "po":
        decisions = read_po_decision_lines(story.text)
        # A new Decision line, or the PO rewrote the old one in place with the other verdict.
        if decisions and (
            len(decisions) > baseline.po_decisions or decisions[-1][0] != baseline.last_po_decision
        ):
            verdict, rest = decisions[-1]
            return _po_output(request, verdict, story.path, written, None, (rest,) if rest else ())
        if status.state == WorkflowState.APPROVED:
            return StageOutput("approved", story.path, "Status Approved", written)
        return None
    if status.state in (WorkflowState.REVIEW, WorkflowState.DONE):
        return StageOutput("implemented", story.path, status.raw or "", written)
    if status.state == WorkflowState.BLOCKED:
        return StageOutput("blocked", story.path, status.raw or "", written)
    return None


def _po_report_output(
    request: StageRequest, paths: BmadPaths, since_ns: int, baseline: StageBaseline
) -> StageOutput | None:
    """The decision of a PO report this stage wrote (the newest, if it wrote several)."""
    reports = []
    for path in po_report_files(paths, request.story_id):
        try:
            written = path.stat().st_mtime_ns
        except FileNotFoundError:
            continue
        if written >= since_ns and baseline.report_digests.get(str(path)) != digest(path):
            reports.append((written, path))
    for written, path in sorted(reports, reverse=True):
        try:
            text = read_text(path)
        except (OSError, UnicodeDecodeError):
            continue
        decisions = read_po_decision_lines(text)
        if decisions:
            verdict, rest = decisions[-1]
            conditions = tuple(conditions_of(text, rest)) if "CONDITIONAL" in verdict else ()
            story = find_story_file(paths.stories, request.story_id)
            return _po_output(request, verdict, story, written, path, conditions)
    return None


def _po_output(
    request: StageRequest,
    verdict: str,
    story: Path | None,
    written: int,
    report: Path | None,
    conditions: tuple[str, ...],
) -> StageOutput:
    if verdict == "CONDITIONAL GO":
        approved = request.po_conditional == "approve"
        outcome = "approved" if approved else "rejected"
        return StageOutput(outcome, story, verdict, written, report=report, conditions=conditions)
    outcome = "approved" if verdict == "GO" else "rejected"
    return StageOutput(outcome, story, verdict, written, report=report)


def _qa_output(
    request: StageRequest, paths: BmadPaths, since_ns: int, baseline: StageBaseline
) -> StageOutput | None:
    gate = find_gate(
        paths,
        request.story_id,
        since_ns=since_ns,
        story_gates_before=baseline.story_gates,
        unchanged=baseline.gate_digests,
    )
    if gate is None:
        return None
    story = find_story_file(paths.stories, request.story_id)
    if gate.value == UNKNOWN:
        why = (
            f"the QA gate {paths.relative(gate.path)} has verdict {gate.raw or '(none)'!r}, "
            "which is none of PASS, CONCERNS, FAIL, WAIVED"
        )
        return StageOutput(UNKNOWN, story, str(gate.path), gate.mtime_ns, invalid=why)
    return StageOutput(gate.value, story, str(gate.path), gate.mtime_ns)


def watch_dirs(request: StageRequest, paths: BmadPaths) -> list[Path]:
    """The folders whose changes can complete the stage."""
    if request.stage == "qa":
        per_story = [folder / request.story_id for folder in paths.gate_dirs[:1]]
        return [paths.stories, *paths.gate_dirs, *per_story]
    if request.stage == "po":
        return [paths.stories, paths.assessments]
    return [paths.stories]
