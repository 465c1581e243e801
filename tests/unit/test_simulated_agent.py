"""The simulated agent as a real subprocess (no tmux): the files it writes are BMad's.

Each run gets the session environment the orchestrator would give it and the prompt as its last
argument; it stays alive after working, so each test waits (deadline, polling the real parsers)
for its output and the end of its turn, as the orchestrator does, and then kills it. Typed
delivery inside tmux is covered in test_sessions.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from orchestrator.agents.simulated import EXIT_AT_START
from orchestrator.methods import StageOutput, StageRequest
from orchestrator.methods.bmad_v4 import (
    BmadPaths,
    check_stage_output,
    default_prompt,
    find_gate,
    find_story_file,
    read_po_decisions,
    read_status,
    read_story_gates,
    set_status,
    take_baseline,
)
from orchestrator.methods.bmad_v4.rehearsal import draft_story
from orchestrator.stages import StageName
from orchestrator.watch import filesystem_now
from tests.helpers import runs, simulated_argv

T = TypeVar("T")
DEADLINE = 20.0
EPIC = """# Epic 1: Todo basics

## Story 1.1: Add a todo

**As a** user, **I want** to add a todo, **so that** I remember it.

**Acceptance Criteria:**
1. A todo can be added with a title.
2. An empty title is rejected.

## Story 1.2: Delete a todo

**Acceptance Criteria:**
1. A todo can be deleted.
"""
GATE = "docs/qa/gates/1.1-add-a-todo.yml"


class Agent:
    """One simulated agent process for one stage of one story."""

    def __init__(
        self, project: Path, stage: str, story: str, *flags: str, prompt: str, typed: bool = False
    ) -> None:
        self.project = project
        self.state = project / ".bmad-orchestrator"
        self.log = project.parent / f"agent-{stage}-{story}-{time.monotonic_ns()}.log"
        self.turn_end = project.parent / f"turn-{stage}-{story}-{time.monotonic_ns()}"
        self.attention = self.turn_end.with_name(self.turn_end.name + ".attention")
        env = {
            **os.environ,
            "BMAD_STAGE": stage,
            "BMAD_STORY_ID": story,
            "BMAD_PROJECT": str(project),
            "BMAD_STATE_DIR": str(self.state),
            "BMAD_TURN_END_FILE": str(self.turn_end),
            "BMAD_ATTENTION_FILE": str(self.attention),
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                simulated_argv(*flags, prompt),
                cwd=project,
                env=env,
                stdin=subprocess.PIPE if typed else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_for(self, condition: Callable[[], T | None], what: str) -> T:
        """Poll `condition` until it holds; fail at once if the agent exits instead."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                value = condition()
                if value:
                    return value
                pytest.fail(f"agent exited {self.proc.returncode} before {what}: {self.output()}")
            time.sleep(0.01)
        pytest.fail(f"no {what} within {DEADLINE}s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def turn_ended_after(self, written_ns: int) -> bool:
        """The orchestrator's second key: the turn-end file written at or after the output."""
        try:
            return self.turn_end.stat().st_mtime_ns >= written_ns
        except FileNotFoundError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def run_stage(
    project: Path,
    stage: StageName,
    story: str = "1.1",
    *flags: str,
    fix_round: bool = False,
    revision: bool = False,
) -> StageOutput:
    """One stage as the orchestrator runs it: watermark, baseline, real prompt, real checks."""
    paths = BmadPaths.load(project)
    request = StageRequest(stage, story, find_story_file(paths.stories, story), revision, fix_round)
    since = filesystem_now(project / ".bmad-orchestrator" / "run")
    baseline = take_baseline(request, paths)
    agent = Agent(project, stage, story, *flags, prompt=default_prompt(request, paths))

    def finished() -> StageOutput | None:
        output = check_stage_output(request, paths, since_ns=since, baseline=baseline)
        return output if output and agent.turn_ended_after(output.written_ns) else None

    try:
        return agent.wait_for(finished, f"{stage} output and turn end")
    finally:
        agent.kill()


@pytest.fixture
def prd(project: Path) -> Path:
    epic = project / "docs" / "prd" / "epic-1-todo-basics.md"
    epic.parent.mkdir(parents=True)
    epic.write_text(EPIC)
    return epic


@pytest.fixture
def drafted(project: Path, prd: Path) -> Path:
    return draft_story(BmadPaths.load(project), "1.1", pieces=False, partial=False)


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


# --- SM ------------------------------------------------------------------------------------------


def test_sm_drafts_the_story_from_the_prd_epic_and_stays_alive(project: Path, prd: Path) -> None:
    paths = BmadPaths.load(project)
    request = StageRequest("sm", "1.1")
    since = filesystem_now(project / ".bmad-orchestrator" / "run")
    agent = Agent(project, "sm", "1.1", prompt=default_prompt(request, paths))
    try:
        output = agent.wait_for(
            lambda: check_stage_output(request, paths, since_ns=since), "the draft"
        )
        agent.wait_for(lambda: "● drafted" in agent.output(), "the report")
        with pytest.raises(subprocess.TimeoutExpired):
            agent.proc.wait(timeout=0.3)  # done, but alive until killed, like Claude Code
    finally:
        agent.kill()
    story = project / "docs" / "stories" / "1.1.story.md"
    assert (output.outcome, output.story_file) == ("drafted", story)
    text = story.read_text()
    assert text.startswith("# Story 1.1: Add a todo\n")
    assert read_status(text) == "Draft"
    assert section(text, "Acceptance Criteria") == (
        "## Acceptance Criteria\n\n"
        "1. A todo can be added with a title.\n2. An empty title is rejected.\n"
    )
    assert "deleted" not in text  # story 1.2's criteria stay out
    assert text.count("- [ ] Task") == 2
    assert runs(project) == {"1.1": {"sm": 1}}


def test_sm_reads_criteria_nested_under_a_sub_heading(project: Path) -> None:
    # prd-tmpl.yaml nests `Acceptance Criteria` as a sub-section of the story, items `N: text`;
    # a neighbouring story with a longer id comes first.
    epic = project / "docs" / "prd" / "epic-1-todo-basics.md"
    epic.parent.mkdir(parents=True)
    epic.write_text(
        "# Epic 1 Todo basics\n\n## Story 1.10 Bulk import\n\n### Acceptance Criteria\n\n"
        "1: A CSV file imports.\n\n## Story 1.1 Add a todo\n\nAs a user, I want a todo.\n\n"
        "### Acceptance Criteria\n\n1: A todo can be added.\n2: Titles are trimmed.\n\n"
        "## Story 1.2 Delete a todo\n\n### Acceptance Criteria\n\n1: A todo can be deleted.\n"
    )
    output = run_stage(project, "sm")
    assert output.story_file is not None
    text = output.story_file.read_text()
    assert text.startswith("# Story 1.1: Add a todo\n")
    assert "1. A todo can be added.\n2. Titles are trimmed.\n" in text
    assert "CSV" not in text and "deleted" not in text


# --- PO ------------------------------------------------------------------------------------------


def test_po_saves_its_report_and_leaves_the_story_alone(project: Path, drafted: Path) -> None:
    before = drafted.read_bytes()
    output = run_stage(project, "po")
    assert (output.outcome, output.story_file, output.detail) == ("approved", drafted, "GO")
    assert output.report is not None
    assert output.report.parent == project / "docs" / "qa" / "assessments"
    assert output.report.name.startswith("1.1-po-validation-")
    assert read_po_decisions(output.report.read_text()) == ["GO"]
    assert drafted.read_bytes() == before  # PO only reports; the orchestrator approves


def test_po_nogo_for_the_first_runs_of_one_story(project: Path, drafted: Path) -> None:
    first = run_stage(project, "po", "1.1", "--po-nogo", "1.1=1")
    assert first.outcome == "rejected" and first.report is not None
    assert read_po_decisions(first.report.read_text()) == ["NO-GO"]
    assert run_stage(project, "po", "1.1", "--po-nogo", "1.1=1").outcome == "approved"
    assert read_po_decisions(first.report.read_text()) == ["GO"]  # the day's report, rewritten
    assert read_po_decisions(drafted.read_text()) == []
    assert runs(project) == {"1.1": {"po": 2}}


def test_po_nogo_for_another_story_leaves_this_one_alone(project: Path, drafted: Path) -> None:
    assert run_stage(project, "po", "1.1", "--po-nogo", "1.2=1").outcome == "approved"


# --- Dev -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "status", "outcome"),
    [
        ((), "Ready for Review", "implemented"),
        (("--dev-blocked", "1.2"), "Ready for Review", "implemented"),
        (("--dev-blocked", "all"), "Blocked", "blocked"),
        (("--dev-blocked", "1.2,1.1"), "Blocked", "blocked"),
    ],
)
def test_dev_sets_the_status(
    project: Path, drafted: Path, flags: tuple[str, ...], status: str, outcome: str
) -> None:
    set_status(drafted, "Approved")
    assert run_stage(project, "dev", "1.1", *flags).outcome == outcome
    text = drafted.read_text()
    assert read_status(text) == status
    if outcome == "implemented":
        assert "- [ ]" not in text and text.count("- [x] Task") == 2
        assert "Implemented every task" in section(text, "Dev Agent Record")
    else:
        assert "- [x]" not in text
        assert "BLOCKED" in section(text, "Dev Agent Record")


# --- QA ------------------------------------------------------------------------------------------


def test_qa_writes_a_gate_file_the_orchestrator_reads(project: Path, drafted: Path) -> None:
    set_status(drafted, "Ready for Review")
    since = filesystem_now(project / ".bmad-orchestrator" / "run")
    output = run_stage(project, "qa")
    gate_file = project / GATE
    assert (output.outcome, output.detail) == ("PASS", str(gate_file))
    data = yaml.safe_load(gate_file.read_text())
    assert (data["schema"], data["story"], data["gate"], data["top_issues"]) == (
        1,
        "1.1",
        "PASS",
        [],
    )
    found = find_gate(BmadPaths.load(project), "1.1", since_ns=since)
    assert found is not None and (found.value, found.path) == ("PASS", gate_file)
    text = drafted.read_text()
    assert read_story_gates(text) == [("PASS", GATE)]
    assert read_status(text) == "Ready for Review"  # QA never changes the Status


def test_qa_fails_the_first_runs_then_passes(project: Path, drafted: Path) -> None:
    set_status(drafted, "Ready for Review")
    assert run_stage(project, "qa", "1.1", "--qa-fail", "1").outcome == "FAIL"
    assert yaml.safe_load((project / GATE).read_text())["top_issues"][0]["severity"] == "high"
    assert run_stage(project, "qa", "1.1", "--qa-fail", "1").outcome == "PASS"
    assert read_story_gates(drafted.read_text()) == [("FAIL", GATE), ("PASS", GATE)]
    assert runs(project) == {"1.1": {"qa": 2}}


# --- misbehaviour and records --------------------------------------------------------------------


def test_exit_at_start_exits_3_before_any_work(project: Path, prd: Path) -> None:
    agent = Agent(project, "sm", "1.1", "--misbehave", "exit-at-start", prompt="draft")
    try:
        assert agent.proc.wait(timeout=DEADLINE) == EXIT_AT_START == 3
    finally:
        agent.kill()
    assert not (project / "docs" / "stories").exists()
    assert runs(project) == {"1.1": {"sm": 1}}  # the start was still counted


def test_misbehave_times_limits_the_crash_to_the_first_runs(project: Path, prd: Path) -> None:
    flags = ("--misbehave", "exit-at-start", "--misbehave-times", "1")
    first = Agent(project, "sm", "1.1", *flags, prompt="draft")
    try:
        assert first.proc.wait(timeout=DEADLINE) == 3
    finally:
        first.kill()
    assert run_stage(project, "sm", "1.1", *flags).outcome == "drafted"
    assert runs(project) == {"1.1": {"sm": 2}}


def test_misbehaviour_for_another_stage_does_not_apply(project: Path, prd: Path) -> None:
    flags = ("--misbehave", "exit-at-start", "--misbehave-stage", "po")
    assert run_stage(project, "sm", "1.1", *flags).outcome == "drafted"


def test_record_writes_the_prompt_as_jsonl(project: Path) -> None:
    record = project / "prompts.jsonl"
    prompt = "/BMad:agents:sm *draft\n\nStory 1.1 with 'quotes', \"double\", $HOME and `ticks`"
    agent = Agent(project, "sm", "1.1", "--record", str(record), prompt=prompt)
    try:
        agent.wait_for(lambda: record.exists() and record.read_text(), "the record")
    finally:
        agent.kill()
    lines = record.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"prompt": prompt, "stage": "sm", "story": "1.1", "argv": ["--record", str(record), prompt]}
    ]


def test_read_runs_counts_per_story_and_stage(project: Path, prd: Path) -> None:
    assert runs(project) == {}
    run_stage(project, "sm", "1.1")
    run_stage(project, "sm", "1.2")
    run_stage(project, "po", "1.2")
    assert runs(project) == {"1.1": {"sm": 1}, "1.2": {"sm": 1, "po": 1}}


# --- the whole cycle -----------------------------------------------------------------------------


def test_the_full_chain_is_accepted_by_the_real_parsers(project: Path, prd: Path) -> None:
    assert run_stage(project, "sm").outcome == "drafted"
    assert run_stage(project, "po", "1.1", "--po-nogo", "1").outcome == "rejected"
    assert run_stage(project, "sm", revision=True).outcome == "drafted"
    story = project / "docs" / "stories" / "1.1.story.md"
    assert "Revised per PO validation" in story.read_text()  # the revision's last edit
    approval = run_stage(project, "po", "1.1", "--po-nogo", "1")
    assert approval.outcome == "approved" and approval.report is not None
    set_status(story, "Approved")  # the orchestrator's move after a GO
    assert run_stage(project, "dev").outcome == "implemented"
    assert run_stage(project, "qa", "1.1", "--qa-fail", "1").outcome == "FAIL"
    set_status(story, "InProgress")  # the orchestrator's move before a fix round
    assert run_stage(project, "dev", fix_round=True).outcome == "implemented"
    assert "Applied the fixes from the latest QA gate" in story.read_text()
    assert run_stage(project, "qa", "1.1", "--qa-fail", "1").outcome == "PASS"
    text = story.read_text()
    assert read_status(text) == "Ready for Review"
    assert read_po_decisions(approval.report.read_text()) == ["GO"]
    assert read_po_decisions(text) == []  # the PO wrote its report, not into the story
    assert read_story_gates(text) == [("FAIL", GATE), ("PASS", GATE)]
    assert runs(project) == {"1.1": {"sm": 2, "po": 2, "dev": 2, "qa": 2}}


# --- turns, as real agents take them ------------------------------------------------------------


def start(
    project: Path, stage: StageName, *flags: str, typed: bool = False, revision: bool = False
) -> Agent:
    paths = BmadPaths.load(project)
    request = StageRequest(stage, "1.1", find_story_file(paths.stories, "1.1"), revision)
    prompt = default_prompt(request, paths)
    return Agent(project, stage, "1.1", *flags, prompt=prompt, typed=typed)


def test_each_turn_ends_with_the_turn_end_file(project: Path, prd: Path) -> None:
    agent = start(project, "sm")
    try:
        story = project / "docs" / "stories" / "1.1.story.md"
        agent.wait_for(lambda: agent.turn_end.exists(), "turn end")
        payload = json.loads(agent.turn_end.read_text())
        assert payload["hook_event_name"] == "Stop"
        assert agent.turn_end.stat().st_mtime_ns >= story.stat().st_mtime_ns
    finally:
        agent.kill()


def test_quiet_turns_signal_nothing(project: Path, prd: Path) -> None:
    agent = start(project, "sm", "--quiet-turns")
    try:
        agent.wait_for(lambda: "turn ended (quietly)" in agent.output(), "the end of the turn")
        assert (project / "docs" / "stories" / "1.1.story.md").exists()
        assert not agent.turn_end.exists()
    finally:
        agent.kill()


def test_a_revision_in_steps_spreads_its_writes_over_a_second(project: Path, prd: Path) -> None:
    run_stage(project, "sm")
    run_stage(project, "po", "1.1", "--po-nogo", "1")
    story = project / "docs" / "stories" / "1.1.story.md"
    before = story.read_text()
    agent = start(project, "sm", "--revise-in-steps", revision=True)
    try:
        agent.wait_for(lambda: story.read_text() != before, "the first edit")
        first = time.monotonic()
        agent.wait_for(lambda: "Revised per PO" in story.read_text(), "the last edit")
        assert time.monotonic() - first >= 0.8  # two pauses of 0.5 s between three writes
    finally:
        agent.kill()


def test_gate_first_writes_the_qa_results_line_after_the_gate_file(
    project: Path, prd: Path
) -> None:
    run_stage(project, "sm")
    story = project / "docs" / "stories" / "1.1.story.md"
    set_status(story, "Review")
    agent = start(project, "qa", "--gate-first")
    try:
        paths = BmadPaths.load(project)
        agent.wait_for(lambda: find_gate(paths, "1.1"), "the gate file")
        assert read_story_gates(story.read_text()) == []  # not yet: the entry comes second
        agent.wait_for(lambda: read_story_gates(story.read_text()), "the QA Results line")
    finally:
        agent.kill()


def test_ask_waits_for_a_typed_answer_before_working(project: Path, prd: Path) -> None:
    agent = start(project, "sm", "--misbehave", "ask", typed=True)
    story = project / "docs" / "stories" / "1.1.story.md"
    try:
        agent.wait_for(lambda: agent.attention.exists(), "the question")
        assert json.loads(agent.attention.read_text())["tool_name"] == "AskUserQuestion"
        assert not story.exists() and not agent.turn_end.exists()
        agent.type("Decide yourself.")
        agent.wait_for(lambda: agent.turn_end.exists(), "the end of the turn")
        assert story.exists()
    finally:
        agent.kill()


def test_an_idle_turn_ends_without_output_then_a_nudge_gets_the_work(
    project: Path, prd: Path
) -> None:
    agent = start(project, "sm", "--misbehave", "idle-turn", typed=True)
    story = project / "docs" / "stories" / "1.1.story.md"
    try:
        agent.wait_for(lambda: agent.turn_end.exists(), "the idle turn's end")
        assert not story.exists()
        first_end = agent.turn_end.stat().st_mtime_ns
        agent.type("Do not ask: continue.")
        agent.wait_for(
            lambda: agent.turn_end.stat().st_mtime_ns > first_end, "the second turn's end"
        )
        assert story.exists()
    finally:
        agent.kill()
