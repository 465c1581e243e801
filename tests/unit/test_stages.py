"""orchestrator.stages: the prompts each stage gets and when its files say it is done."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.methods import StageRequest
from orchestrator.methods.bmad_v4 import (
    BmadPaths,
    StageBaseline,
    check_stage_output,
    default_prompt,
    nudge_prompt,
    render_prompt,
    take_baseline,
    watch_dirs,
)
from orchestrator.stages import STAGES, StageName
from tests.helpers import write as write_file

SINCE = 1_700_000_000 * 10**9  # the stage's watermark (ns); files get explicit mtimes around it
FRESH = SINCE + 10**9
STALE = SINCE - 10**9
STORY_HEAD = "# Story 1.1: Add a todo\n\n"
STORY_BODY = "## Story\n\n**As a** user\n\n## Tasks / Subtasks\n\n- [ ] Task 1\n\n## QA Results\n"


@pytest.fixture
def paths(project: Path) -> BmadPaths:
    return BmadPaths.load(project)


def write(path: Path, text: str, mtime_ns: int = FRESH) -> Path:
    return write_file(path, text, mtime_ns)


def story(paths: BmadPaths, status: str | None, extra: str = "", mtime_ns: int = FRESH) -> Path:
    section = f"## Status\n\n{status}\n\n" if status is not None else ""
    text = STORY_HEAD + section + STORY_BODY + extra
    return write(paths.stories / "1.1.story.md", text, mtime_ns)


def check(stage: StageName, paths: BmadPaths, baseline: StageBaseline | None = None):
    request = StageRequest(stage, "1.1")
    return check_stage_output(request, paths, since_ns=SINCE, baseline=baseline or StageBaseline())


# --- prompts -------------------------------------------------------------------------------------


def test_sm_prompt_drafts_the_story(paths: BmadPaths) -> None:
    prompt = default_prompt(StageRequest("sm", "1.1"), paths)
    assert prompt.splitlines()[0] == "/BMad:agents:sm *draft"
    assert "docs/stories/1.1.story.md" in prompt
    assert "do not ask to override" in prompt  # create-next-story's risk question
    assert "report" not in prompt


def test_sm_revision_prompt_points_at_the_po_report(paths: BmadPaths) -> None:
    report = paths.assessments / "1.1-po-validation-20261126.md"
    request = StageRequest(
        "sm", "1.1", paths.stories / "1.1.story.md", revision=True, findings=report
    )
    prompt = default_prompt(request, paths)
    assert prompt.splitlines()[0] == "/BMad:agents:sm *draft"
    assert "PO validation report docs/qa/assessments/1.1-po-validation-20261126.md" in prompt
    assert "docs/stories/1.1.story.md" in prompt and "Do not ask to override" in prompt


def test_po_prompt_asks_for_a_saved_report_ending_in_a_decision(paths: BmadPaths) -> None:
    request = StageRequest("po", "1.1", paths.stories / "1.1.story.md")
    prompt = default_prompt(request, paths)
    assert (
        prompt.splitlines()[0] == "/BMad:agents:po *validate-story-draft docs/stories/1.1.story.md"
    )
    assert "Save your complete validation report as docs/qa/assessments/1.1-po-validation-" in (
        prompt
    )
    assert "'Decision: GO' or 'Decision: NO-GO'" in prompt
    assert "Do not change the story file" in prompt


def test_every_prompt_is_for_an_unattended_run(paths: BmadPaths) -> None:
    story_file = paths.stories / "1.1.story.md"
    for stage in STAGES:
        prompt = default_prompt(StageRequest(stage, "1.1", story_file), paths)
        assert "YOLO" in prompt and "elicit: true" in prompt and "never ask" in prompt


def test_qa_prompt_turns_a_blocking_condition_into_a_fail_gate(paths: BmadPaths) -> None:
    prompt = default_prompt(StageRequest("qa", "1.1", paths.stories / "1.1.story.md"), paths)
    assert "write a FAIL gate" in prompt and "empty File List" in prompt
    assert "Write both the QA Results entry" in prompt


def test_dev_prompt_develops_and_a_fix_round_reviews_qa(paths: BmadPaths) -> None:
    story_file = paths.stories / "1.1.story.md"
    develop = default_prompt(StageRequest("dev", "1.1", story_file), paths)
    assert develop.splitlines()[0] == "/BMad:agents:dev *develop-story docs/stories/1.1.story.md"
    assert "*review-qa" not in develop
    fix = default_prompt(StageRequest("dev", "1.1", story_file, fix_round=True), paths)
    assert fix.splitlines()[0] == "/BMad:agents:dev *review-qa docs/stories/1.1.story.md"
    assert "docs/qa/gates/1.1-*.yml" in fix
    assert "*develop-story" not in fix
    assert "own lint and test commands" in fix and "not the deno commands" in fix


def test_qa_prompt_reviews_the_story_and_names_the_gate_folder(paths: BmadPaths) -> None:
    prompt = default_prompt(StageRequest("qa", "1.1", paths.stories / "1.1.story.md"), paths)
    assert prompt.splitlines()[0] == "/BMad:agents:qa *review docs/stories/1.1.story.md"
    assert "docs/qa/gates/1.1-<slug>.yml" in prompt


def test_prompts_use_the_projects_slash_prefix_and_folders(tmp_path: Path) -> None:
    config = tmp_path / ".bmad-core" / "core-config.yaml"
    config.parent.mkdir()
    config.write_text("slashPrefix: Team\ndevStoryLocation: work/stories\n")
    paths = BmadPaths.load(tmp_path)
    story_file = paths.stories / "1.2.user-login.md"
    prompts = {
        stage: default_prompt(StageRequest(stage, "1.2", story_file), paths) for stage in STAGES
    }
    assert prompts["sm"].splitlines()[0] == "/Team:agents:sm *draft"
    assert prompts["po"].splitlines()[0] == (
        "/Team:agents:po *validate-story-draft work/stories/1.2.user-login.md"
    )
    assert prompts["dev"].splitlines()[0] == (
        "/Team:agents:dev *develop-story work/stories/1.2.user-login.md"
    )
    assert prompts["qa"].splitlines()[0] == "/Team:agents:qa *review work/stories/1.2.user-login.md"
    assert not any("/BMad:" in prompt for prompt in prompts.values())


def test_render_prompt_fills_every_field(paths: BmadPaths) -> None:
    template = "{stage}|{story_id}|{story_file}|/{slash_prefix}:x|{stories_dir}|{gates_dir}|{{lit}}"
    request = StageRequest("dev", "4.3.1", paths.stories / "4.3.1.story.md")
    assert render_prompt(template, request, paths) == (
        "dev|4.3.1|docs/stories/4.3.1.story.md|/BMad:x|docs/stories|docs/qa/gates|{lit}"
    )


@pytest.mark.parametrize("placeholder", ["{story}", "{story_file.name}", "{0}", "{}"])
def test_an_unknown_placeholder_raises_naming_it(paths: BmadPaths, placeholder: str) -> None:
    with pytest.raises(ValueError, match=f"unknown placeholder {placeholder.replace('.', '[.]')}"):
        render_prompt(f"review {placeholder} now", StageRequest("qa", "1.1"), paths)


# --- SM ------------------------------------------------------------------------------------------


def test_sm_is_drafted_when_a_fresh_story_has_a_status(paths: BmadPaths) -> None:
    assert check("sm", paths) is None  # no story yet
    path = story(paths, "Draft", mtime_ns=SINCE)  # written at the watermark counts
    output = check("sm", paths)
    assert output is not None and (output.outcome, output.story_file) == ("drafted", path)


def test_sm_accepts_a_titled_story_file_name(paths: BmadPaths) -> None:
    path = write(paths.stories / "1.1.add-a-todo.md", STORY_HEAD + "## Status: Draft\n")
    output = check("sm", paths)
    assert output is not None and output.story_file == path


def test_a_leftover_story_older_than_the_watermark_is_not_a_draft(paths: BmadPaths) -> None:
    path = story(paths, "Draft", mtime_ns=STALE)
    assert check("sm", paths) is None
    os.utime(path, ns=(FRESH, FRESH))  # the agent rewrote it during the stage
    assert check("sm", paths) is not None


@pytest.mark.parametrize(
    "text", [STORY_HEAD, STORY_HEAD + "## Status\n", STORY_HEAD + "## Status\n\n## Story\n"]
)
def test_a_half_written_story_is_not_a_draft(paths: BmadPaths, text: str) -> None:
    write(paths.stories / "1.1.story.md", text)
    assert check("sm", paths) is None


def test_another_storys_draft_does_not_count(paths: BmadPaths) -> None:
    write(paths.stories / "1.10.story.md", STORY_HEAD + "## Status\n\nDraft\n")
    assert check("sm", paths) is None


# --- PO ------------------------------------------------------------------------------------------


def validation(decision: str) -> str:
    return f"\n## PO Validation\n\nDecision: {decision}\n\n- reasons\n"


@pytest.mark.parametrize(("decision", "outcome"), [("GO", "approved"), ("NO-GO", "rejected")])
def test_a_new_po_decision_is_the_outcome(paths: BmadPaths, decision: str, outcome: str) -> None:
    path = story(paths, "Draft", mtime_ns=STALE)
    baseline = take_baseline(StageRequest("po", "1.1"), paths)
    assert (baseline.po_decisions, baseline.last_po_decision, baseline.story_gates) == (0, None, 0)
    story(paths, "Draft", validation(decision))
    output = check("po", paths, baseline)
    assert output is not None
    assert (output.outcome, output.story_file, output.detail) == (outcome, path, decision)


def test_a_decision_already_in_the_baseline_does_not_count(paths: BmadPaths) -> None:
    story(paths, "Draft", validation("NO-GO"), mtime_ns=STALE)
    baseline = take_baseline(StageRequest("po", "1.1"), paths)
    assert (baseline.po_decisions, baseline.last_po_decision) == (1, "NO-GO")
    story(paths, "Draft", validation("NO-GO"))  # touched during the stage, same verdict
    assert check("po", paths, baseline) is None
    story(paths, "Draft", validation("GO"))  # the same line rewritten in place
    output = check("po", paths, baseline)
    assert output is not None and output.outcome == "approved"


def test_a_go_rewritten_in_place_as_no_go_counts(paths: BmadPaths) -> None:
    story(paths, "Draft", validation("GO"), mtime_ns=STALE)
    baseline = take_baseline(StageRequest("po", "1.1"), paths)
    story(paths, "Draft", validation("NO-GO"))
    output = check("po", paths, baseline)
    assert output is not None and output.outcome == "rejected"


def test_a_second_decision_with_the_same_verdict_counts(paths: BmadPaths) -> None:
    story(paths, "Draft", validation("NO-GO"), mtime_ns=STALE)
    baseline = take_baseline(StageRequest("po", "1.1"), paths)
    story(paths, "Draft", validation("NO-GO") + validation("NO-GO"))
    output = check("po", paths, baseline)
    assert output is not None and output.outcome == "rejected"


def test_status_approved_without_a_decision_is_approved(paths: BmadPaths) -> None:
    story(paths, "Draft")
    assert check("po", paths) is None
    story(paths, "Approved")
    output = check("po", paths)
    assert output is not None and output.outcome == "approved"


def test_a_decision_in_a_stale_story_does_not_count(paths: BmadPaths) -> None:
    story(paths, "Draft", validation("GO"), mtime_ns=STALE)
    assert check("po", paths) is None


# --- Dev -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("Ready for Review", "implemented"),
        ("Review", "implemented"),
        ("Ready for Done", "implemented"),
        ("Blocked", "blocked"),
        ("InProgress", None),
        ("In Progress", None),
        ("Approved", None),
        ("Draft", None),
    ],
)
def test_dev_outcome_follows_the_status(paths: BmadPaths, status: str, outcome: str | None) -> None:
    story(paths, status)
    output = check("dev", paths)
    assert (output.outcome if output else None) == outcome


def test_a_stale_ready_for_review_does_not_count(paths: BmadPaths) -> None:
    story(paths, "Ready for Review", mtime_ns=STALE)
    assert check("dev", paths) is None


# --- QA ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["PASS", "CONCERNS", "FAIL", "WAIVED"])
def test_qa_outcome_is_the_gate_value(paths: BmadPaths, value: str) -> None:
    path = story(paths, "Ready for Review", mtime_ns=STALE)
    gate = write(paths.gates / "1.1-add-a-todo.yml", f"schema: 1\nstory: '1.1'\ngate: {value}\n")
    output = check("qa", paths)
    assert output is not None
    assert (output.outcome, output.story_file, output.detail) == (value, path, str(gate))


def test_a_gate_whose_verdict_is_none_of_the_four_is_invalid_output(paths: BmadPaths) -> None:
    story(paths, "Ready for Review", mtime_ns=STALE)
    write(paths.gates / "1.1-add-a-todo.yml", "schema: 1\ngate: EXCELLENT # best ever\n")
    output = check("qa", paths)
    assert output is not None and output.outcome == "unknown"
    assert output.invalid is not None
    assert "docs/qa/gates/1.1-add-a-todo.yml" in output.invalid and "'EXCELLENT" in output.invalid


def test_a_stale_gate_is_not_done(paths: BmadPaths) -> None:
    story(paths, "Ready for Review", mtime_ns=STALE)
    write(paths.gates / "1.1-add-a-todo.yml", "gate: PASS\n", mtime_ns=STALE)
    assert check("qa", paths) is None
    write(paths.gates / "1.10-other.yml", "gate: PASS\n")
    assert check("qa", paths) is None


def test_qa_falls_back_to_a_new_gate_line_beyond_the_baseline(paths: BmadPaths) -> None:
    first = "### Review Date: 1\n\nGate: FAIL\n"
    story(paths, "Ready for Review", first, mtime_ns=STALE)
    baseline = take_baseline(StageRequest("qa", "1.1"), paths)
    assert baseline.story_gates == 1
    story(paths, "Ready for Review", first)
    assert check("qa", paths, baseline) is None  # only last round's line
    story(paths, "Ready for Review", first + "\n### Review Date: 2\n\nGate: CONCERNS\n")
    output = check("qa", paths, baseline)
    assert output is not None and output.outcome == "CONCERNS"


def test_each_stage_watches_the_folders_its_output_can_land_in(paths: BmadPaths) -> None:
    qa = watch_dirs(StageRequest("qa", "1.1"), paths)
    assert qa[:2] == [paths.stories, paths.gates]
    assert set(paths.gate_dirs) | {paths.gates / "1.1"} <= set(qa)
    assert watch_dirs(StageRequest("po", "1.1"), paths) == [paths.stories, paths.assessments]
    for stage in ("sm", "dev"):
        assert watch_dirs(StageRequest(stage, "1.1"), paths) == [paths.stories]


# --- "written during the stage" means changed, not only newer --------------------------------


def test_a_story_written_in_the_watermarks_own_clock_tick_does_not_count(
    paths: BmadPaths,
) -> None:
    # The file system's clock is coarse: a write just before the stage began can carry the
    # watermark's own timestamp. Its content is the baseline's, so it is not this stage's output.
    story(paths, "Draft", validation("NO-GO"), mtime_ns=SINCE)
    baseline = take_baseline(StageRequest("sm", "1.1"), paths)
    assert baseline.story_digest is not None
    assert check("sm", paths, baseline) is None
    assert check("po", paths, baseline) is None
    story(paths, "Draft", mtime_ns=SINCE)  # the same tick, but revised: it counts
    output = check("sm", paths, baseline)
    assert output is not None and output.outcome == "drafted" and output.written_ns == SINCE


def test_a_gate_file_rewritten_with_the_same_bytes_does_not_count(paths: BmadPaths) -> None:
    story(paths, "Ready for Review", mtime_ns=STALE)
    gate = write(paths.gates / "1.1-add-a-todo.yml", "gate: FAIL\n", mtime_ns=SINCE)
    baseline = take_baseline(StageRequest("qa", "1.1"), paths)
    assert baseline.gate_digests == {str(gate): baseline.gate_digests[str(gate)]}
    write(gate, "gate: FAIL\n")  # touched during the stage, same bytes: last round's verdict
    assert check("qa", paths, baseline) is None
    write(gate, "gate: PASS\n")
    output = check("qa", paths, baseline)
    assert output is not None and output.outcome == "PASS" and output.written_ns == FRESH


def test_the_nudge_names_each_stages_output(paths: BmadPaths) -> None:
    story_file = paths.stories / "1.1.story.md"
    expected = {
        "sm": "story 1.1 to docs/stories/1.1.story.md",
        "po": "'Decision: GO' or 'Decision: NO-GO'",
        "dev": "'Ready for Review'",
        "qa": "docs/qa/gates/1.1-<slug>.yml",
    }
    for stage, fragment in expected.items():
        text = nudge_prompt(StageRequest(stage, "1.1", story_file), paths)
        assert text.startswith("Do not ask") and fragment in text
