"""What the simulated agent writes for each BMad v4 stage: the files real agents write.

The story from the sharded PRD's epic (SM), the PO's validation report, the Dev's Status and
record, QA's gate file and QA Results entry; with the variations real agents show (a revision in
several writes, the gate file before the QA Results line) when asked.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.files import write_atomic
from orchestrator.methods.bmad_v4.names import find_story_file, slugify
from orchestrator.methods.bmad_v4.paths import BmadPaths
from orchestrator.methods.bmad_v4.po import po_report_path
from orchestrator.methods.bmad_v4.status import read_status, set_status

STEP_PAUSE = 0.5  # the simulated agent's own pace between the writes of a multi-step edit


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _epic_story(paths: BmadPaths, story_id: str) -> tuple[str, list[str]]:
    """The story's title and acceptance criteria from the sharded PRD, if it has them."""
    epic = story_id.split(".")[0]
    for epic_file in sorted((paths.root / "docs" / "prd").glob(f"epic-{epic}*.md")):
        text = epic_file.read_text()
        # `Story 1.1` is never `Story 1.10` or `Story 1.1.1`.
        heading = re.search(
            rf"^(#+)\s*Story\s+{re.escape(story_id)}(?![\w.])[ \t]*:?\s*(.+)$", text, re.M
        )
        if heading is None:
            continue
        body = text[heading.end() :]
        # The PRD template nests `Acceptance Criteria` as a sub-heading: stop at the next story.
        level = len(heading.group(1))
        following = re.search(rf"^#{{1,{level}}}\s", body, re.M)
        body = body[: following.start()] if following else body
        criteria = [m.group(1).strip() for m in re.finditer(r"^\s*\d+[.:]\s*(.+)$", body, re.M)]
        return heading.group(2).strip(), criteria
    return f"Simulated story {story_id}", []


def _write_in_pieces(path: Path, text: str, pieces: bool) -> None:
    if not pieces:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    # Half a file first, as an editor flushing a long write would: it must not count as done.
    cut = text.index("## Status") if "## Status" in text else len(text) // 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        handle.write(text[:cut])
        handle.flush()
        os.fsync(handle.fileno())
        time.sleep(0.3)  # the simulated agent's own pace, not a synchronisation point
        handle.write(text[cut:])


def revise_story(story: Path, *, in_steps: bool, pause: float = STEP_PAUSE) -> Path:
    """SM revision after a NO-GO: sharpen the ACs, name the tests, then log the revision.

    `in_steps` edits the file three times, `pause` apart, as an agent's editor would: the first
    edit already leaves a story with a Status, long before the revision is done.
    """
    text = story.read_text()
    text = re.sub(r"^(\d+\. .*?)\.?$", r"\1, observable in the UI.", text, count=1, flags=re.M)
    if in_steps:
        write_atomic(story, text)
        time.sleep(pause)
    text = text.replace("Add a test for AC", "Add the unit test for AC")
    if in_steps:
        write_atomic(story, text)
        time.sleep(pause)
    text = text.replace(
        "\n## Dev Agent Record",
        f"| {_today()} | 0.2 | Revised per PO validation | Bob (SM, simulated) |\n"
        "\n## Dev Agent Record",
        1,
    )
    write_atomic(story, text)
    set_status(story, "Draft")
    return story


def draft_story(
    paths: BmadPaths,
    story_id: str,
    *,
    pieces: bool,
    partial: bool,
    revision: bool = False,
    in_steps: bool = False,
    pause: float = STEP_PAUSE,
) -> Path:
    """SM `*draft`: a full v4 story file with Status Draft (or a revision of the existing one)."""
    existing = find_story_file(paths.stories, story_id)
    if existing is not None and revision:
        return revise_story(existing, in_steps=in_steps, pause=pause)
    title, criteria = _epic_story(paths, story_id)
    criteria = criteria or [f"The behaviour of story {story_id} works as described."]
    path = existing or paths.stories / f"{story_id}.story.md"
    acs = "\n".join(f"{i}. {c}" for i, c in enumerate(criteria, 1))
    tasks = "\n".join(
        f"- [ ] Task {i}: Implement AC {i} (AC: {i})\n  - [ ] Subtask {i}.1: Add a test for AC {i}"
        for i in range(1, len(criteria) + 1)
    )
    head = f"# Story {story_id}: {title}\n\n"
    if partial:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(head)
        return path
    text = (
        f"{head}## Status\n\nDraft\n\n"
        f"## Story\n\n**As a** user,\n**I want** {title.lower()},\n"
        "**so that** the epic moves on\n\n"
        f"## Acceptance Criteria\n\n{acs}\n\n"
        f"## Tasks / Subtasks\n\n{tasks}\n\n"
        "## Dev Notes\n\nDrafted by the simulated Scrum Master from the sharded PRD.\n\n"
        "### Testing\n\nUnit tests beside the code.\n\n"
        "## Change Log\n\n| Date | Version | Description | Author |\n|---|---|---|---|\n"
        f"| {_today()} | 0.1 | Initial draft | Bob (SM, simulated) |\n\n"
        "## Dev Agent Record\n\n### Agent Model Used\n\n### Debug Log References\n\n"
        "### Completion Notes List\n\n### File List\n\n"
        "## QA Results\n"
    )
    _write_in_pieces(path, text, pieces)
    return path


def validate_story(paths: BmadPaths, story_id: str, go: bool, *, conditional: bool = False) -> Path:
    """PO `*validate-story-draft`: the report saved where the prompt asks, ending in a Decision.

    The story file itself is not touched, as BMad's PO does not touch it.
    """
    decision = "GO" if go else "NO-GO"
    if go and conditional:
        decision = "CONDITIONAL GO - add a test for the empty title"
    reasons = (
        "- Acceptance criteria are testable; tasks cover every AC."
        if go
        else "- AC 1 is not testable as written: state the observable result.\n"
        "- Tasks do not name the tests to add."
    )
    report = po_report_path(paths, story_id)
    report.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    write_atomic(
        report,
        f"# Story {story_id} validation report\n\nValidated by Sarah (PO, simulated) at "
        f"{stamp}.\n\n#### Critical Issues\n\n{reasons}\n\n#### Final Assessment\n\n"
        f"- **Implementation Readiness Score**: {9 if go else 5}/10\n\nDecision: {decision}\n",
    )
    return report


def develop_story(story: Path, *, blocked: bool, fix_round: bool) -> str:
    """Dev `*develop-story` / `*review-qa`: tick the tasks, fill the record, set the Status."""
    text = story.read_text()
    if blocked:
        note = "- BLOCKED: a dependency named in Dev Notes does not exist (simulated)."
        status = "Blocked"
    else:
        text = text.replace("- [ ] ", "- [x] ")
        note = (
            "- Applied the fixes from the latest QA gate (simulated)."
            if fix_round
            else "- Implemented every task; all tests pass (simulated)."
        )
        status = "Ready for Review"
    text = text.replace("### Completion Notes List\n", f"### Completion Notes List\n\n{note}\n", 1)
    write_atomic(story, text)
    set_status(story, status)
    return status


def review_story(
    paths: BmadPaths,
    story: Path,
    story_id: str,
    gate: str,
    *,
    gate_first: bool = False,
    pause: float = STEP_PAUSE,
) -> Path:
    """QA `*review`: the QA Results entry and the gate file (BMad's source of truth).

    review-story's order is QA Results, then the gate; qa-gate's is the gate, then the `Gate:`
    line in QA Results (`gate_first`, two `pause`s apart). Real agents do both.
    """
    title_match = re.search(r"^# Story [^:]+:\s*(.+)$", story.read_text(), re.M)
    title = title_match.group(1).strip() if title_match else story_id
    gate_file = paths.gates / f"{story_id}-{slugify(title)}.yml"
    issues = (
        "top_issues:\n  - id: TEST-001\n    severity: high\n"
        "    finding: 'AC 1 has no test (simulated)'\n    suggested_action: 'Add the test'\n"
        if gate == "FAIL"
        else "top_issues: []\n"
    )
    gate_text = (
        f"schema: 1\nstory: '{story_id}'\nstory_title: '{title}'\ngate: {gate}\n"
        f"status_reason: 'Simulated review.'\nreviewer: 'Quinn (Test Architect)'\n"
        f"updated: '{datetime.now(UTC).isoformat(timespec='microseconds')}'\n{issues}"
        "waiver: { active: false }\n"
    )
    if gate_first:
        write_atomic(gate_file, gate_text)
        time.sleep(2 * pause)
    relative = gate_file.relative_to(paths.root)
    entry = (
        f"### Review Date: {_today()}\n\n### Reviewed By: Quinn (Test Architect)\n\n"
        f"### Gate Status\n\nGate: {gate} → {relative}\n"
    )
    text = story.read_text()
    results = re.search(r"^## QA Results[ \t]*$", text, re.M)
    if results is None:
        text = text.rstrip() + "\n\n## QA Results\n\n" + entry
    else:
        # BMad appends below the existing entries, inside the section (another section may
        # follow it).
        following = re.search(r"^##\s", text[results.end() :], re.M)
        end = results.end() + following.start() if following else len(text)
        text = f"{text[:end].rstrip()}\n\n{entry}" + (f"\n{text[end:]}" if following else "")
    write_atomic(story, text)
    if not gate_first:
        write_atomic(gate_file, gate_text)
    return gate_file


class BmadV4Rehearsal:
    """The simulated agent's file work in one BMad v4 project (see `methods.base.Rehearsal`)."""

    def __init__(self, paths: BmadPaths) -> None:
        self.paths = paths

    def _story(self, story_id: str) -> Path:
        story = find_story_file(self.paths.stories, story_id)
        if story is None:
            raise FileNotFoundError(f"no story file for {story_id} in {self.paths.stories}")
        return story

    def draft(
        self,
        story_id: str,
        prompt: str,
        *,
        pieces: bool,
        partial: bool,
        in_steps: bool,
        pause: float,
    ) -> str:
        """SM `*draft`, or the revision the prompt asks for."""
        revision = prompt.lstrip().split("\n\n", 1)[-1].startswith("Revise story")
        story = draft_story(
            self.paths,
            story_id,
            pieces=pieces,
            partial=partial,
            revision=revision,
            in_steps=in_steps,
            pause=pause,
        )
        status = read_status(story.read_text())
        return f"drafted {story.relative_to(self.paths.root)} (Status: {status})"

    def validate(self, story_id: str, prompt: str, *, go: bool, conditional: bool) -> str:
        """PO `*validate-story-draft`: the report, with its decision."""
        self._story(story_id)
        report = validate_story(self.paths, story_id, go, conditional=conditional)
        decision = "GO" if go else "NO-GO"
        return f"PO decision: {decision} → {report.relative_to(self.paths.root)}"

    def develop(
        self, story_id: str, prompt: str, *, blocked: bool, followup: bool, omit_result: bool
    ) -> str:
        """Dev `*develop-story`, or `*review-qa` when the prompt asks for the fix round (v4 has
        no build-auto: `followup` and `omit_result` do not apply)."""
        status = develop_story(
            self._story(story_id), blocked=blocked, fix_round="*review-qa" in prompt
        )
        return f"Status: {status}"

    def review(
        self, story_id: str, prompt: str, *, verdict: str, gate_first: bool, pause: float
    ) -> str:
        """QA `*review`: the gate file and the QA Results entry."""
        gate_file = review_story(
            self.paths,
            self._story(story_id),
            story_id,
            verdict,
            gate_first=gate_first,
            pause=pause,
        )
        return f"Gate: {verdict} → {gate_file.relative_to(self.paths.root)}"
