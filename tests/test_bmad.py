"""orchestrator.bmad against real files: core-config, story files, Status, PO decisions, gates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.bmad import (
    BmadConfigError,
    BmadPaths,
    Status,
    find_gate,
    find_story_file,
    normalise_status,
    read_po_decisions,
    read_status,
    set_status,
    slugify,
)

T0 = 1_700_000_000 * 10**9  # a fixed mtime base (ns), so ordering never depends on the clock
SECOND = 10**9


def write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def write_config(root: Path, text: str) -> Path:
    return write(root / ".bmad-core" / "core-config.yaml", text)


# --- core-config ---------------------------------------------------------------------------------


def test_load_reads_custom_locations_from_core_config(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        "markdownExploder: true\n"
        "qa:\n  qaLocation: quality/review\n"
        "devStoryLocation: work/stories\n"
        "slashPrefix: Team\n",
    )
    paths = BmadPaths.load(tmp_path)
    root = tmp_path.resolve()
    assert paths.root == root
    assert paths.stories == root / "work" / "stories"
    assert paths.qa == root / "quality" / "review"
    assert paths.gates == root / "quality" / "review" / "gates"
    assert paths.slash_prefix == "Team"


def test_load_without_core_config_uses_the_v4_defaults(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    root = tmp_path.resolve()
    assert (paths.stories, paths.qa, paths.gates, paths.slash_prefix) == (
        root / "docs" / "stories",
        root / "docs" / "qa",
        root / "docs" / "qa" / "gates",
        "BMad",
    )


def test_an_older_config_without_qa_or_slash_prefix_gets_the_defaults(tmp_path: Path) -> None:
    # v4.25-era core-config: `version` and `workflow`, no `qa` block and no `slashPrefix`.
    write_config(
        tmp_path,
        "version: 4.25.0\ndevStoryLocation: docs/my-stories\n"
        "workflow:\n  planFile: docs/workflow-plan.md\n",
    )
    paths = BmadPaths.load(tmp_path)
    assert paths.stories == tmp_path.resolve() / "docs" / "my-stories"
    assert paths.gates == tmp_path.resolve() / "docs" / "qa" / "gates"
    assert paths.slash_prefix == "BMad"


def test_an_empty_core_config_means_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, "")
    assert BmadPaths.load(tmp_path).stories == tmp_path.resolve() / "docs" / "stories"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("devStoryLocation: [docs, stories]\n", "devStoryLocation"),
        ("devStoryLocation: '   '\n", "devStoryLocation"),
        ("slashPrefix: 7\n", "slashPrefix"),
        ("qa:\n  qaLocation: 5\n", "qa.qaLocation"),
        ("qa: quality\n", "qa"),  # a string where a mapping belongs must not mean docs/qa
    ],
)
def test_unusable_values_raise_naming_the_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(BmadConfigError) as raised:
        BmadPaths.load(tmp_path)
    message = str(raised.value)
    assert f"{key} must" in message
    assert str(config.resolve()) in message


def test_invalid_yaml_raises_naming_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "devStoryLocation: [docs/stories\nqa: {\n")
    with pytest.raises(BmadConfigError, match="not valid YAML") as raised:
        BmadPaths.load(tmp_path)
    assert str(config.resolve()) in str(raised.value)


def test_a_config_that_is_not_a_mapping_raises(tmp_path: Path) -> None:
    write_config(tmp_path, "- devStoryLocation: docs/stories\n")
    with pytest.raises(BmadConfigError, match="mapping"):
        BmadPaths.load(tmp_path)


# --- story files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "story_id", "belongs"),
    [
        ("1.1.story.md", "1.1", True),
        ("1.1.user-login.md", "1.1", True),
        ("1.1.1.story.md", "1.1", False),
        ("1.10.story.md", "1.1", False),
        ("11.1.story.md", "1.1", False),
        ("1x1.story.md", "1.1", False),  # the dot is literal
        ("1.1.story.md.bak", "1.1", False),
        ("1.1.story.md", "1.10", False),
        ("4.3.1.story.md", "4.3.1", True),
        ("4.3.1.story.md", "4.3", False),
        ("1.4b.story.md", "1.4b", True),
        ("1.4b.story.md", "1.4", False),
        ("1.4.story.md", "1.4b", False),
    ],
)
def test_which_file_names_belong_to_a_story(
    tmp_path: Path, name: str, story_id: str, belongs: bool
) -> None:
    path = write(tmp_path / name, "# Story\n")
    assert find_story_file(tmp_path, story_id) == (path if belongs else None)


def test_several_matches_pick_the_newest_by_mtime(tmp_path: Path) -> None:
    plain = write(tmp_path / "1.1.story.md", "a", T0 + SECOND)
    titled = write(tmp_path / "1.1.user-login.md", "b", T0)
    write(tmp_path / "1.10.story.md", "c", T0 + 9 * SECOND)  # newest, but another story
    assert find_story_file(tmp_path, "1.1") == plain
    os.utime(titled, ns=(T0 + 2 * SECOND, T0 + 2 * SECOND))
    assert find_story_file(tmp_path, "1.1") == titled


def test_a_missing_folder_or_a_folder_named_like_a_story_is_no_story(tmp_path: Path) -> None:
    assert find_story_file(tmp_path / "nowhere", "1.1") is None
    (tmp_path / "1.1.story.md").mkdir()
    assert find_story_file(tmp_path, "1.1") is None


# --- Status --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Story 1.1: X\n\n## Status\nApproved\n\n## Story\n", "Approved"),
        ("# Story 1.1: X\n\n## Status\n\nReady for Review\n\n## Story\n", "Ready for Review"),
        ("# Story 1.1: X\n\n## Status: Draft\n\n## Story\n", "Draft"),
        ("## Status:   In Progress  \n", "In Progress"),
        (
            "# Story 1.1: X\n\n## Story\n\nbody\n\n"
            "## QA Results\n\nGate: PASS\n\n## Status\n\nDone",
            "Done",
        ),
        ("## Status\n\n**Draft**\n", "Draft"),
        ("## Status: `Approved`\n", "Approved"),
        ("## Status\r\n\r\nApproved\r\n", "Approved"),
        # The first `## Status` heading wins; `### Status` is not a Status heading.
        ("### Status\n\nDone\n\n## Status\n\nDraft\n", "Draft"),
        ("## Status\n\nDraft\n\n## Dev Agent Record\n\n### Status\n\nDone\n", "Draft"),
        ("## Status\n\nApproved\n\n## Notes\n\n## Status\n\nDone\n", "Approved"),
        # No value.
        ("# Story 1.1: X\n\n## Story\n\nStatus: Draft\n", None),
        ("## Status Report\n\nDraft\n", None),
        ("## Status\n\n## Story\n\nbody\n", None),
        ("## Status\n", None),
        ("## Status\n\n\n", None),
        ("## Status\n\n****\n", None),
    ],
)
def test_read_status(text: str, expected: str | None) -> None:
    assert read_status(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("InProgress", Status.IN_PROGRESS),
        ("In Progress", Status.IN_PROGRESS),
        ("in-progress", Status.IN_PROGRESS),
        ("Review", Status.REVIEW),
        ("Ready for Review", Status.REVIEW),
        ("ready  for review", Status.REVIEW),
        ("Ready for Done", Status.READY_FOR_DONE),
        ("Draft", Status.DRAFT),
        ("Approved", Status.APPROVED),
        ("**Done**", Status.DONE),
        ("Blocked", Status.BLOCKED),
        ("Ready", None),
        ("Reviewed", None),
        ("Ready for Development", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_status(value: str | None, expected: Status | None) -> None:
    assert normalise_status(value) is expected


STORY = (
    "# Story 1.1: Add a todo\n\n"
    "## Status\n\nDraft\n\n"
    "## Story\n\n**As a** user,\n**I want** to add a todo,\n**so that** I remember it\n\n"
    "## Acceptance Criteria\n\n1. A Draft todo can be added.\n\n"
    "## Change Log\n\n| Date | Version | Description | Author |\n|---|---|---|---|\n"
    "| 2025-01-01 | 0.1 | Initial Draft | Bob |\n\n"
    "## Dev Agent Record\n\n### Status\n\nDraft notes\n\n"
    "## QA Results\n"
)


def test_set_status_rewrites_only_the_value(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", STORY)
    set_status(story, "Approved")
    assert story.read_text() == STORY.replace("## Status\n\nDraft\n", "## Status\n\nApproved\n")
    set_status(story, "Ready for Review")
    expected = STORY.replace("## Status\n\nDraft\n", "## Status\n\nReady for Review\n")
    assert story.read_text() == expected
    assert os.listdir(tmp_path) == ["1.1.story.md"]  # no temp file left behind


def test_set_status_keeps_the_inline_form(tmp_path: Path) -> None:
    text = "# Story 1.1: X\n\n## Status: Draft\n\n## Story\n\nDraft text\n"
    story = write(tmp_path / "1.1.story.md", text)
    set_status(story, "Ready for Review")
    assert story.read_text() == text.replace("## Status: Draft", "## Status: Ready for Review")


def test_set_status_keeps_the_next_line_form_without_a_blank_line(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", "## Status\n**Approved**\n## Story\nApproved\n")
    set_status(story, "Done")
    assert story.read_text() == "## Status\nDone\n## Story\nApproved\n"


def test_set_status_keeps_crlf_line_endings(tmp_path: Path) -> None:
    story = tmp_path / "1.1.story.md"
    story.write_bytes(b"# Story 1.1: X\r\n\r\n## Status\r\n\r\nDraft\r\n\r\n## Story\r\nbody\r\n")
    set_status(story, "Approved")
    assert story.read_bytes() == (
        b"# Story 1.1: X\r\n\r\n## Status\r\n\r\nApproved\r\n\r\n## Story\r\nbody\r\n"
    )


def test_a_story_without_status_gets_a_heading_after_its_title(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", "# Story 1.1: X\n\n## Story\n\nbody\n")
    set_status(story, "Draft")
    assert story.read_text() == "# Story 1.1: X\n\n## Status\n\nDraft\n\n## Story\n\nbody\n"


def test_a_story_without_title_or_status_gets_a_heading_first(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", "just notes\n")
    set_status(story, "Draft")
    assert story.read_text() == "## Status\n\nDraft\n\njust notes\n"


def test_an_empty_status_heading_is_filled(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", "## Status\n\n## Story\n\nbody\n")
    set_status(story, "Approved")
    assert story.read_text() == "## Status\n\nApproved\n\n## Story\n\nbody\n"


def test_set_status_preserves_the_file_mode(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", STORY)
    story.chmod(0o640)
    set_status(story, "Approved")
    assert stat.S_IMODE(story.stat().st_mode) == 0o640
    assert read_status(story.read_text()) == "Approved"


# --- PO decisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Decision: GO\n", ["GO"]),
        ("Decision: NO-GO\n", ["NO-GO"]),
        ("**Decision:** NO-GO\n", ["NO-GO"]),
        ("**Decision**: GO\n", ["GO"]),
        ("- Decision: no go\n", ["NO-GO"]),
        ("> Decision: `GO`\n", ["GO"]),
        ("PO Decision: NO-GO\n", ["NO-GO"]),
        ("| Decision | GO |\n", ["GO"]),
        ("Decision: GOOD enough\n", []),
        ("The Decision: GO is pending\n", []),
        ("No decision yet.\n", []),
    ],
)
def test_read_po_decisions(text: str, expected: list[str]) -> None:
    assert read_po_decisions(text) == expected


def test_several_decisions_are_listed_in_order() -> None:
    text = (
        "## PO Validation\n\nDecision: NO-GO\n\n- AC 1 untestable\n\n"
        "## PO Validation\n\n**Decision:** NO-GO\n\n"
        "## PO Validation\n\nDecision: GO\n"
    )
    assert read_po_decisions(text) == ["NO-GO", "NO-GO", "GO"]


# --- QA gates ------------------------------------------------------------------------------------


def gate(paths: BmadPaths, name: str, body: str, mtime_ns: int = T0) -> Path:
    return write(paths.gates / name, body, mtime_ns)


def story_with(paths: BmadPaths, qa_results: str, mtime_ns: int = T0) -> Path:
    text = STORY + "\n" + qa_results + "\n## Status Log\n\nGate: FAIL\n"  # after the section
    return write(paths.stories / "1.1.story.md", text, mtime_ns)


def test_the_newest_valid_gate_file_wins(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    old = gate(paths, "1.1-first-review.yml", "gate: FAIL\n", T0)
    new = gate(paths, "1.1-second-review.yaml", "schema: 1\ngate: PASS\n", T0 + SECOND)
    found = find_gate(paths, "1.1")
    assert found is not None
    assert (found.value, found.path, found.mtime_ns) == ("PASS", new, T0 + SECOND)
    os.utime(old, ns=(T0 + 2 * SECOND, T0 + 2 * SECOND))
    found = find_gate(paths, "1.1")
    assert found is not None and (found.value, found.path) == ("FAIL", old)


def test_gates_of_other_stories_never_count(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    gate(paths, "1.10-x.yml", "gate: PASS\n")
    gate(paths, "1.1.1-x.yml", "gate: PASS\n")
    gate(paths, "11.1-x.yml", "gate: PASS\n")
    assert find_gate(paths, "1.1") is None
    found = find_gate(paths, "1.10")
    assert found is not None and found.path.name == "1.10-x.yml"


def test_a_malformed_newest_gate_is_skipped_for_an_older_valid_one(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    valid = gate(paths, "1.1-a.yml", "gate: CONCERNS\n", T0 + SECOND)
    gate(paths, "1.1-b.yml", "gate: [PASS\n", T0 + 2 * SECOND)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("CONCERNS", valid)
    # ...but only while the older one was written at or after the watermark.
    assert find_gate(paths, "1.1", since_ns=T0 + SECOND + 1) is None


def test_the_watermark_excludes_older_gate_files(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    gate(paths, "1.1-x.yml", "gate: PASS\n", T0)
    assert find_gate(paths, "1.1", since_ns=T0 + 1) is None
    found = find_gate(paths, "1.1", since_ns=T0)  # at the watermark counts
    assert found is not None and found.value == "PASS"


@pytest.mark.parametrize(
    "body", ["gate: MAYBE\n", "gate:\n", "gate: [PASS]\n", "- gate: PASS\n", "schema: 1\n", ""]
)
def test_an_invalid_gate_value_is_skipped(tmp_path: Path, body: str) -> None:
    paths = BmadPaths.load(tmp_path)
    gate(paths, "1.1-x.yml", body)
    assert find_gate(paths, "1.1") is None


def test_a_new_gate_line_naming_no_file_is_the_fallback(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story = story_with(paths, "### Gate Status\n\nGate: CONCERNS\n", T0)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("CONCERNS", story)
    # A line that was there before the stage began is an old verdict...
    assert find_gate(paths, "1.1", since_ns=T0, story_gates_before=1) is None
    # ...and a story not touched since the watermark holds none.
    assert find_gate(paths, "1.1", since_ns=T0 + 1) is None


def test_only_lines_beyond_the_baseline_count(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story_with(paths, "### Review Date: 1\n\nGate: FAIL\n\n### Review Date: 2\n\nGate: PASS\n")
    found = find_gate(paths, "1.1", story_gates_before=1)
    assert found is not None and found.value == "PASS"
    assert find_gate(paths, "1.1", story_gates_before=2) is None


def test_a_gate_line_outside_qa_results_is_not_a_verdict(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story_with(paths, "")  # only the `## Status Log` section below QA Results has a Gate line
    assert find_gate(paths, "1.1") is None


def test_a_gate_line_naming_a_file_waits_for_that_file(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    named = "docs/qa/gates/epic-1.1-add-a-todo.yml"  # a real-world name outside `1.1-*.yml`
    story_with(paths, f"### Gate Status\n\nGate: PASS → {named}\n", T0)
    assert find_gate(paths, "1.1", since_ns=T0) is None  # QA has not written the file yet
    gate_file = write(tmp_path / named, "gate: PASS\n", T0 + SECOND)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("PASS", gate_file)


def test_a_gate_line_naming_a_half_written_or_stale_file_is_not_done(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    named = paths.gates / "1.1-add-a-todo.yml"
    story_with(paths, "Gate: PASS → docs/qa/gates/1.1-add-a-todo.yml\n", T0 + SECOND)
    write(named, "schema: 1\ngate: [\n", T0 + SECOND)  # QA is mid-way through writing it
    assert find_gate(paths, "1.1", since_ns=T0) is None
    write(named, "gate: FAIL\n", T0 - SECOND)  # last round's file, not yet rewritten
    assert find_gate(paths, "1.1", since_ns=T0) is None
    write(named, "gate: PASS\n", T0 + 2 * SECOND)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("PASS", named)


def test_slugify_follows_bmad() -> None:
    assert slugify("User Auth - Login!") == "user-auth-login"
    assert slugify("  Add a   todo ") == "add-a-todo"
    assert slugify("C'est -- fini") == "cest-fini"
    assert slugify("!!!") == "story"


def test_emphasised_gate_lines_are_verdicts_too(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story_with(paths, "### Gate Status\n\n**Gate:** CONCERNS\n")
    found = find_gate(paths, "1.1")
    assert found is not None and found.value == "CONCERNS"
