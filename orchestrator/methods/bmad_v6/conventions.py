"""What each v6 stage is told, and when its output says the stage is done.

Classic (create-story, dev-story, code-review): SM creates the story file with
`Status: ready-for-dev`, Dev takes it to `review`, QA (code-review) to `done` (pass) or back to
`in-progress` (a fix round). Build (`bmad-build-auto`): one Dev stage plans, implements,
reviews and commits; it is done when the spec's `status` is `done` or `blocked` and it has an
`## Auto Run Result`; QA is a follow-up review pass on the done spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.methods.base import StageOutput, StageRequest, check_template
from orchestrator.methods.bmad_v6.artifacts import (
    StoriesEntry,
    find_specs,
    find_story,
    read_spec,
    review_findings,
    stories_entries,
    story_status,
)
from orchestrator.methods.bmad_v6.layout import Flavour, V6Layout, version_tuple

SAMPLE_FIELDS = {
    "story_id": "1.2",
    "story_key": "1-2-user-auth",
    "story_file": "_bmad-output/implementation-artifacts/1-2-user-auth.md",
    "implementation_dir": "_bmad-output/implementation-artifacts",
    "skill": "/bmad-create-story",
    "stage": "sm",
    "note": "add a test for the empty title",
}
SKILLS = {
    ("classic", "sm"): "bmad-create-story",
    ("classic", "dev"): "bmad-dev-story",
    ("classic", "qa"): "bmad-code-review",
    ("build", "dev"): "bmad-build-auto",
    ("build", "qa"): "bmad-build-auto",
}
UNATTENDED = (
    "You are running unattended inside an automated BMad pipeline: nobody will answer "
    "questions. Never wait for input; where the workflow asks, answer as the orchestrator "
    "says here."
)
PATCH_ANSWER = "for the patch findings choose 1 (Apply every patch)"
REVIEW_ANSWERS = (
    "Answers for every stop of the review: at discovery answer Y; at the checkpoint continue; "
    "for each decision-needed finding choose to defer it, reason 'unattended run: needs a "
    f"person'; {PATCH_ANSWER}; then update the story Status and sprint-status as the review "
    "says, and stop (do not start another workflow)."
)


def skill_call(skill: str, args: str, *, activation: str, version: str | None) -> str:
    """How the CLI calls a v6 skill: `/bmad-x` (6.1+), `/bmad-bmm-x` (6.0.x), `$bmad-x` (Codex)."""
    parsed = version_tuple(version or "")
    if activation == "mention":
        return f"${skill} {args}".rstrip()
    if parsed is not None and parsed < (6, 1, 0):
        return f"/{skill.replace('bmad-', 'bmad-bmm-', 1)} {args}".rstrip()
    return f"/{skill} {args}".rstrip()


@dataclass(frozen=True)
class V6Baseline:
    """The stage's files before it starts: the story's status and the spec's result count."""

    story_file: str | None = None
    story_status: str | None = None
    spec: str | None = None
    spec_status: str | None = None
    spec_results: int = 0

    def as_json(self) -> dict[str, Any]:
        """JSON-able, to keep on the session."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> V6Baseline:
        """From `as_json`, tolerating a missing or foreign record."""
        if not isinstance(data, dict):
            return cls()
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class Conventions:
    """One v6 project's stage conventions, for its flavour (classic or build)."""

    def __init__(self, layout: V6Layout, flavour: Flavour, key_of: Callable[[str], str]) -> None:
        self.layout = layout
        self.flavour = flavour
        self.key_of = key_of  # story id -> sprint-status key (or the id itself)

    # ------------------------------------------------------------------ files
    def story_file(self, story_id: str) -> Path | None:
        """The story's file (classic) or its newest spec (build)."""
        if self.flavour == "build":
            specs = self.specs(story_id)
            return specs[0] if specs else None
        return find_story(self.layout.implementation, self.key_of(story_id))

    def entry(self, story_id: str) -> StoriesEntry | None:
        """The story's `stories.yaml` entry, when exactly one spec folder lists it."""
        found = stories_entries(self.layout.output / "specs", story_id)
        return found[0] if len(found) == 1 else None

    def specs(self, story_id: str) -> list[Path]:
        """Build-auto's spec files of the story, newest first: folder+id, else by story key."""
        entry = self.entry(story_id)
        if entry is not None:
            return entry.specs()
        return find_specs(self.layout.implementation, self.key_of(story_id))

    # ------------------------------------------------------------------ prompts
    def fields(self, request: StageRequest) -> dict[str, str]:
        """The values a prompt template may use."""
        key = self.key_of(request.story_id)
        story = request.story_file or self.story_file(request.story_id)
        impl = self.layout.relative(self.layout.implementation)
        skill = SKILLS.get((self.flavour, request.stage), "")
        return {
            "story_id": request.story_id,
            "story_key": key,
            "story_file": self.layout.relative(story) if story else f"{impl}/{key}.md",
            "implementation_dir": impl,
            "skill": skill_call(
                skill, "", activation=request.activation, version=self.layout.version
            ),
            "stage": request.stage,
            "note": request.note or "",
        }

    def render(self, template: str, request: StageRequest) -> str:
        """A user's template filled in."""
        check_template(template, SAMPLE_FIELDS)
        return template.format_map(self.fields(request))

    def prompt(self, request: StageRequest) -> str:
        """The stage's own prompt."""
        f = self.fields(request)
        skill = SKILLS[(self.flavour, request.stage)]

        def call(args: str) -> str:
            return skill_call(
                skill, args, activation=request.activation, version=self.layout.version
            )

        if self.flavour == "build":
            spec = self.story_file(request.story_id)
            if request.stage == "qa" and spec is not None:
                text = (
                    f"{call(self.layout.relative(spec))}\n\nRun a follow-up review pass on this "
                    "done spec (its previous run recommended one)."
                )
            elif spec is not None:
                text = f"{call(self.layout.relative(spec))}\n\nResume this story's spec."
            elif (entry := self.entry(request.story_id)) is not None:
                folder = self.layout.relative(entry.folder)
                text = call(f"Spec folder: {folder}. Story id: {entry.id}.")
                text += f"\n\n{entry.invoke_dev_with}" if entry.invoke_dev_with else ""
            else:
                text = f"{call(f['story_key'])}\n\nBuild story {f['story_key']} end to end."
        elif request.stage == "sm":
            text = (
                f"{call(f['story_key'])}\n\nCreate story {f['story_key']} only, as "
                f"{f['story_file']}, and set it ready-for-dev."
            )
        elif request.stage == "dev":
            text = f"{call(f['story_file'])}\n\nImplement this story until its Status is review."
            if request.fix_round:
                text += (
                    " The code review sent it back: work every unchecked [Review] item under "
                    "### Review Findings (or Review Follow-ups) first, check each off, then set "
                    "Status review."
                )
        else:
            text = f"{call(f['story_file'])}\n\nReview this story.\n\n{REVIEW_ANSWERS}"
        if request.conflicts:
            text += (
                f"\n\nA merge of {request.merge_from} conflicts in: {', '.join(request.conflicts)}."
                " Resolve every conflict keeping both sides' intent, then finish as above."
            )
        if request.note:
            text += f"\n\nA person answered: {request.note}"
        return f"{text}\n\n{UNATTENDED}"

    def nudge(self, request: StageRequest) -> str:
        """What to type when the agent stopped before its output was there."""
        if self.flavour == "build":
            return (
                "Continue without stopping. If the spec's status is done or blocked, make sure "
                "it ends with a complete ## Auto Run Result section (Status, and the Blocking "
                "condition if blocked), then stop."
            )
        if request.stage == "qa":
            return f"Continue unattended. {REVIEW_ANSWERS}"
        goal = "ready-for-dev" if request.stage == "sm" else "review"
        return (
            f"Continue unattended without asking: choose sensible answers yourself and finish "
            f"until the story's Status is {goal}."
        )

    # ------------------------------------------------------------------ completion
    def watch_dirs(self, request: StageRequest) -> list[Path]:
        """The implementation folder (and the spec folder's `stories/` under folder+id)."""
        folders = [self.layout.implementation]
        entry = self.entry(request.story_id) if self.flavour == "build" else None
        if entry is not None:
            folders.append(entry.folder / "stories")
        return folders

    def baseline(self, request: StageRequest) -> V6Baseline:
        """The story's status, or the spec's status and result count, before the stage."""
        found = request.story_file or self.story_file(request.story_id)
        if found is None or not found.is_file():
            return V6Baseline()
        if self.flavour == "build":
            spec = read_spec(found)
            return V6Baseline(
                spec=str(found),
                spec_status=spec.status if spec else None,
                spec_results=spec.results if spec else 0,
            )
        try:
            status = story_status(found.read_text(errors="replace"))
        except OSError:
            status = None
        return V6Baseline(story_file=str(found), story_status=status)

    def check(
        self, request: StageRequest, *, since_ns: int, baseline: V6Baseline
    ) -> StageOutput | None:
        """The outcome once the stage's file, written since it began, says it is done."""
        if self.flavour == "build":
            return self._check_build(request, since_ns=since_ns, baseline=baseline)
        story = self.story_file(request.story_id)
        if story is None:
            return None
        try:
            info = story.stat()
            text = story.read_bytes().decode("utf-8-sig", errors="replace")
        except OSError:
            return None
        if info.st_mtime_ns < since_ns:
            return None
        status = story_status(text)
        written = info.st_mtime_ns
        if request.stage == "sm" and status in ("ready-for-dev", "in-progress", "review", "done"):
            return StageOutput("drafted", story, detail=status, written_ns=written)
        if request.stage == "dev" and status in ("review", "done"):
            return StageOutput("implemented", story, detail=status, written_ns=written)
        if request.stage == "qa" and status in ("done", "in-progress"):
            if status == "in-progress" and baseline.story_status == "in-progress":
                return None  # not moved yet
            findings = review_findings(text)
            verdict = "PASS" if status == "done" else "FAIL"
            detail = (
                f"{len(findings.open)} open, {len(findings.resolved)} resolved, "
                f"{len(findings.deferred)} deferred finding(s)"
            )
            return StageOutput(
                verdict, story, detail=detail, written_ns=written, conditions=findings.deferred
            )
        return None

    def _check_build(
        self, request: StageRequest, *, since_ns: int, baseline: V6Baseline
    ) -> StageOutput | None:
        for path in self.specs(request.story_id):
            try:
                written = path.stat().st_mtime_ns
            except OSError:
                continue
            if written < since_ns:
                continue
            spec = read_spec(path)
            if spec is None or spec.status not in ("done", "blocked") or spec.results == 0:
                continue  # a missing result section is repaired by the nudge
            unmoved = spec.results <= baseline.spec_results and spec.status == baseline.spec_status
            if request.stage == "qa" and str(path) == baseline.spec and unmoved:
                continue  # the follow-up pass has not written its result yet
            if spec.status == "blocked":
                reason = spec.blocking or "no blocking condition named"
                outcome = "FAIL" if request.stage == "qa" else "blocked"
                return StageOutput(
                    outcome, path, detail=f"blocked: {reason}", written_ns=written,
                    conditions=spec.deferred,
                )  # fmt: skip
            if request.stage == "qa":
                outcome = "PASS"
            else:
                outcome = "implemented" if spec.followup else "complete"
            detail = "follow-up review recommended" if spec.followup else "done"
            return StageOutput(
                outcome, path, detail=detail, written_ns=written, conditions=spec.deferred
            )
        return None
