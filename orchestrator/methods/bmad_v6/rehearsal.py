"""What the simulated agent writes for each v6 stage: the files the v6 skills write.

create-story: the story from the skill's template, `Status: ready-for-dev`, and its
sprint-status line (plus the epic lift). dev-story: the tasks checked, the Dev Agent Record,
`Status: review`. code-review: `### Review Findings`, then the patches applied when the prompt
gave the patch menu's answer up front, else it stops at that menu as the real step 4 does and
applies every patch when answered `1`; a failing review leaves its patch
as an action item and sets `in-progress`. build-auto: a spec with frontmatter and an
`## Auto Run Result`, done or blocked, committed when the project is a git repository.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.files import write_atomic
from orchestrator.methods.base import RehearsalPaused
from orchestrator.methods.bmad_v6.artifacts import read_spec, review_findings, set_story_status
from orchestrator.methods.bmad_v6.conventions import PATCH_ANSWER

if TYPE_CHECKING:
    from orchestrator.methods.bmad_v6.project import BmadV6Project

PATCH_MENU = (
    "How would you like to handle the 1 `patch` findings?\n"
    "1. Apply every patch\n2. Leave as action items\n3. Walk through each patch\n"
    "HALT — I am waiting for your numbered choice."
)


def _title(project: BmadV6Project, key: str) -> str:
    """`Title` of `### Story N.M: Title` in the planning epics, or a stand-in."""
    numbers = re.match(r"^(\d+)-(\d+)", key)
    if numbers is not None:
        for epics in sorted(project.layout.planning.glob("*epic*.md")):
            found = re.search(
                rf"^#+\s*Story\s+{numbers[1]}\.{numbers[2]}\s*:\s*(.+)$", epics.read_text(), re.M
            )
            if found:
                return found[1].strip()
    return f"Simulated story {key}"


class BmadV6Rehearsal:
    """The v6 skills' file work for one project."""

    def __init__(self, project: BmadV6Project) -> None:
        self.project = project
        self.layout = project.layout

    def draft(
        self, story_id: str, prompt: str, *, pieces: bool, partial: bool, in_steps: bool,
        pause: float,
    ) -> str:  # fmt: skip
        """create-story: the story file, ready-for-dev, and its sprint-status line."""
        key = self.project.story_key(story_id)
        path = self.layout.implementation / f"{key}.md"
        numbers = re.match(r"^(\d+)-(\d+)", key)
        epic, story = (numbers[1], numbers[2]) if numbers else ("1", "1")
        body = (
            f"# Story {epic}.{story}: {_title(self.project, key)}\n\n"
            + ("" if partial else "Status: ready-for-dev\n\n")
            + "## Story\n\nAs a user,\nI want the simulated feature,\n"
            "so that the pipeline runs.\n\n"
            "## Acceptance Criteria\n\n1. The simulated feature works.\n\n"
            "## Tasks / Subtasks\n\n- [ ] Task 1 (AC: #1)\n  - [ ] Subtask 1.1\n\n"
            "## Dev Notes\n\n- Simulated.\n\n## Dev Agent Record\n\n### Agent Model Used\n\n"
            "### Debug Log References\n\n### Completion Notes List\n\n### File List\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, body)
        if partial:
            return ""
        self.project.move_story(story_id, "ready-for-dev")
        return f"created {self.layout.relative(path)} (ready-for-dev)"

    def validate(self, story_id: str, prompt: str, *, go: bool, conditional: bool) -> str:
        """v6 has no PO stage."""
        raise FileNotFoundError("BMad v6 has no PO validation stage")

    def develop(
        self, story_id: str, prompt: str, *, blocked: bool, followup: bool, omit_result: bool
    ) -> str:
        """dev-story (classic) or build-auto (build)."""
        if self.project.flavour == "build":
            return self._build(story_id, blocked=blocked, followup=followup, omit=omit_result)
        story = self.project.story_file(story_id)
        if story is None:
            raise FileNotFoundError(f"no story file for {story_id}: run create-story first")
        if blocked:
            raise RehearsalPaused(
                "HALT: the story needs a new dependency; approve it before I go on"
            )
        self.project.move_story(story_id, "in-progress", back_from="review")
        text = story.read_text()
        text = re.sub(r"^(\s*[-*]\s*)\[ \](\s*\[(?:AI-)?Review\]\[(?!Defer))", r"\1[x]\2", text,
                      flags=re.M)  # fmt: skip
        text = text.replace("- [ ] Task 1", "- [x] Task 1").replace(
            "  - [ ] Subtask 1.1", "  - [x] Subtask 1.1"
        )
        text = text.replace(
            "### Completion Notes List\n", "### Completion Notes List\n\n- Simulated work done.\n"
        )
        write_atomic(story, text)
        set_story_status(story, "review")
        self.project.move_story(story_id, "review")
        return f"implemented {self.layout.relative(story)} (review)"

    def review(
        self, story_id: str, prompt: str, *, verdict: str, gate_first: bool, pause: float
    ) -> str:
        """code-review (classic), or a follow-up build-auto pass (build)."""
        if self.project.flavour == "build":
            return self._followup(story_id)
        story = self.project.story_file(story_id)
        if story is None:
            raise FileNotFoundError(f"no story file for {story_id} to review")
        text = story.read_text()
        findings = review_findings(text)
        if findings.open and re.search(
            r"(^|\D)1(\D|$)|apply every patch", prompt.split("\n")[-1], re.I
        ):
            text = re.sub(r"^(\s*-\s*)\[ \](\s*\[Review\]\[Patch\])", r"\1[x]\2", text, flags=re.M)
            write_atomic(story, text)
            set_story_status(story, "done")
            self.project.move_story(story_id, "done")
            return "Review Complete! Story Status: done (1 patch applied, 1 deferred)"
        if findings.any and not findings.open:
            set_story_status(story, "done")  # a re-review of a story whose findings are fixed
            self.project.move_story(story_id, "done")
            return "Review Complete! Story Status: done (clean review)"
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        if verdict == "FAIL":
            section = (
                "\n### Review Findings\n\n"
                "- [ ] [Review][Patch] Input is not validated [src/app.py:12]\n"
            )
            write_atomic(story, text.rstrip("\n") + "\n" + section)
            set_story_status(story, "in-progress")
            self.project.move_story(story_id, "in-progress", back_from="review")
            return "Review Complete! Story Status: in-progress (1 action item)"
        section = (
            "\n### Review Findings\n\n"
            "- [ ] [Review][Patch] Missing null check [src/app.py:7]\n"
            "- [x] [Review][Defer] Slow query on large tables [src/db.py:40] — deferred, "
            "pre-existing\n"
        )
        write_atomic(story, text.rstrip("\n") + "\n" + section)
        deferred = self.layout.deferred_work
        old = deferred.read_text() if deferred.is_file() else ""
        write_atomic(
            deferred,
            old + f"\n## Deferred from: code review of {story.stem} ({day})\n\n"
            "- Slow query on large tables\n",
        )
        if PATCH_ANSWER not in prompt:  # the menu's answer was not given up front: it stops
            raise RehearsalPaused(PATCH_MENU)
        return self.review(story_id, "1", verdict=verdict, gate_first=gate_first, pause=pause)

    def _build(self, story_id: str, *, blocked: bool, followup: bool, omit: bool) -> str:
        key = self.project.story_key(story_id)
        existing = self.project.conventions.specs(story_id)
        entry = self.project.conventions.entry(story_id)
        if existing:
            path = existing[0]
        elif entry is not None:  # folder+id: `stories/<id>-<slug of the title>.md`
            slug = re.sub(r"[^a-z0-9]+", "-", entry.title.lower()).strip("-") or "story"
            path = entry.folder / "stories" / f"{entry.id}-{slug}.md"
        else:
            path = self.layout.implementation / f"spec-{key}.md"
        spec = read_spec(path) if path.is_file() else None
        if spec is not None and spec.status == "done" and spec.results == 0:
            write_atomic(path, path.read_text().rstrip("\n") + "\n\n" + _result("done", None))
            return f"appended the Auto Run Result to {self.layout.relative(path)}"
        status = "blocked" if blocked else "done"
        front = (
            f"---\ntitle: '{_title(self.project, key)}'\ntype: 'feature'\nstatus: '{status}'\n"
            f"review_loop_iteration: 1\nfollowup_review_recommended: {str(followup).lower()}\n"
            "context: []\nwarnings: []\ndeferred:\n  - summary: >-\n      Cache the parsed "
            "config\n    evidence: |-\n      Parsed on every request\n    location: >-\n"
            "      src/config.py:10\n    severity: low\n---\n\n"
            f"# {_title(self.project, key)}\n\n<intent-contract>\n\n## Intent\n\n"
            "**Problem:** simulated.\n\n</intent-contract>\n"
        )
        condition = "intent gap" if blocked else None
        text = front if omit and not blocked else front + "\n" + _result(status, condition)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
        if not blocked:
            _commit(self.layout.root, f"feat({key}): simulated build-auto")
        if omit and not blocked:
            raise RehearsalPaused("(the run stopped before writing its Auto Run Result)")
        return f"{status}: {self.layout.relative(path)}"

    def _followup(self, story_id: str) -> str:
        specs = self.project.conventions.specs(story_id)
        if not specs:
            raise FileNotFoundError(f"no spec for {story_id} to review again")
        text = (
            specs[0]
            .read_text()
            .replace("followup_review_recommended: true", "followup_review_recommended: false")
        )
        write_atomic(specs[0], text.rstrip("\n") + "\n\n" + _result("done", None))
        _commit(self.layout.root, f"fix({specs[0].stem}): follow-up review")
        return f"follow-up review done: {self.layout.relative(specs[0])}"


def _result(status: str, condition: str | None) -> str:
    lines = ["## Auto Run Result", "", f"Status: {status}"]
    if condition:
        lines.append(f"Blocking condition: {condition}")
    else:
        lines += ["", "- Summary: simulated change", "- Patches applied: 0, deferred: 1"]
    return "\n".join(lines) + "\n"


def _commit(root: Path, message: str) -> None:
    """build-auto commits its work itself ("commits but does not push")."""
    inside = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if inside.returncode != 0:
        return
    subprocess.run(["git", "-C", str(root), "add", "--all", "--", "."], check=False,
                   capture_output=True)  # fmt: skip
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=bmad-sim", "-c", "user.email=sim@localhost",
         "commit", "-q", "-m", message],
        check=False, capture_output=True,
    )  # fmt: skip
