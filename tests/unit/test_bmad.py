"""orchestrator.bmad against real files: core-config, story files, Status, PO decisions, gates."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.methods.bmad_v4 import (
    BmadConfigError,
    BmadPaths,
    add_change_log_row,
    find_gate,
    find_story_file,
    gate_files,
    parse_state,
    read_gate_text,
    read_po_decision_lines,
    read_po_decisions,
    read_status,
    read_story_gates,
    read_story_status,
    resolve_gate_path,
    set_status,
    slugify,
)
from tests.helpers import write

T0 = 1_700_000_000 * 10**9  # a fixed mtime base (ns), so ordering never depends on the clock
SECOND = 10**9


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


# --- story files (names from the catalogue of real v4 projects) -------------------------------


@pytest.mark.parametrize(
    ("name", "story_id", "belongs"),
    [
        ("1.1.story.md", "1.1", True),
        ("1.1.user-login.md", "1.1", True),
        ("1.1.next.js-14-setup.md", "1.1", True),  # a dotted slug
        ("1.1.user-login.story.md", "1.1", True),
        ("1.1.User_Login.md", "1.1", True),
        ("1.1-user-login.md", "1.1", True),
        ("story-1.1-user-login.md", "1.1", True),
        ("story-1.1.md", "1.1", True),
        ("AB.3.checkout-flow.md", "AB.3", True),  # an alphabetic epic
        ("2.3A.offline-mode.md", "2.3A", True),  # a letter suffix
        ("2.3A.offline-mode.md", "2.3", False),
        ("4.3.1.story.md", "4.3.1", True),  # three-part ids
        ("4.3.1.story.md", "4.3", False),
        ("1.1.1-x.md", "1.1", False),
        ("epic-2-story-3.md", "2.3", True),  # brownfield
        ("1.10.story.md", "1.1", False),
        ("1.1.story.md", "1.10", False),
        ("11.1.story.md", "1.1", False),
        ("1x1.story.md", "1.1", False),  # the dot is literal
        ("1.1.story.md.bak", "1.1", False),
        ("1.4b.story.md", "1.4", False),
        ("README.md", "1.1", False),
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


def test_a_story_in_a_subfolder_is_found_when_the_folder_has_none(tmp_path: Path) -> None:
    nested = write(tmp_path / "epic-2" / "2.1.story.md", "# Story 2.1\n")
    assert find_story_file(tmp_path, "2.1") == nested
    top = write(tmp_path / "2.1.login.md", "# Story 2.1\n", T0)
    assert find_story_file(tmp_path, "2.1") == top  # the folder itself comes first


def test_a_missing_folder_or_a_folder_named_like_a_story_is_no_story(tmp_path: Path) -> None:
    assert find_story_file(tmp_path / "nowhere", "1.1") is None
    (tmp_path / "1.1.story.md").mkdir()
    assert find_story_file(tmp_path, "1.1") is None


# --- Status: every form, every value family ------------------------------------------------------

TITLE = "# Story 1.1: Add a todo\n\n"


@pytest.mark.parametrize(
    ("text", "state", "value"),
    [
        # Forms (the template's, and what agents write instead).
        (TITLE + "## Status\n\nDraft\n\n## Story\n", "draft", "Draft"),
        (TITLE + "## Status\nApproved\n## Story\n", "approved", "Approved"),
        (TITLE + "### Status\n\nApproved\n", "approved", "Approved"),
        (TITLE + "#### Status\n\nDone\n", "done", "Done"),
        (TITLE + "## Status: In Progress\n", "in_progress", "In Progress"),
        (TITLE + "**Status:** Draft\n\n## Story\n", "draft", "Draft"),
        (TITLE + "**Status**: Review\n", "review", "Review"),
        (TITLE + "- **Status:** Done ✅\n", "done", "Done"),
        (TITLE + "Status: Ready for Review\n", "review", "Ready for Review"),
        (TITLE + "status: done\n", "done", "done"),
        (TITLE + "**Statut:** Approuvée\n", "approved", "Approuvée"),
        (TITLE + "#### 状态: Done\n", "done", "Done"),
        (TITLE + "### Estado: Borrador\n", "draft", "Borrador"),
        ("---\nid: 1.1\nstatus: approved\n---\n" + TITLE + "Body\n", "approved", "approved"),
        # Decorations.
        (TITLE + "## Status\n\nReady for Review ✅\n", "review", "Ready for Review"),
        (TITLE + "## Status\n\nReady for Review (all 12 tests passing)\n", "review", None),
        (TITLE + "## Status\n\nStatus: Ready for Done\n", "review", "Ready for Done"),
        (TITLE + "## Status\n\n**Done**\n", "done", "Done"),
        (TITLE + "## Status\n\nDone — 2025-09-18\n", "done", "Done"),
        (TITLE + "## Status\n\nDone - merged to main\n", "done", "Done"),
        (TITLE + "## Status\n\nCurrent Status: Done ✅\n", "done", "Done"),
        (TITLE + "## Status\n\n✅ COMPLETED\n", "done", "COMPLETED"),
        (TITLE + "## Status: `Approved`\n", "approved", "Approved"),
        (TITLE + "## Status\n\n<b>Done</b>\n", "done", "Done"),
        (TITLE + "## Status\n\n- InProgress\n", "in_progress", "InProgress"),
        # Value families.
        (TITLE + "## Status\n\nCompleted\n", "done", "Completed"),
        (TITLE + "## Status\n\nComplete\n", "done", "Complete"),
        (TITLE + "## Status\n\nDONE\n", "done", "DONE"),
        (TITLE + "## Status\n\n✅ Terminé et Validé\n", "done", "Terminé et Validé"),
        (TITLE + "## Status\n\n**Ready for Development**\n", "approved", None),
        (TITLE + "## Status\n\nPrêt pour développement\n", "approved", None),
        (TITLE + "## Status\n\nIn-Progress\n", "in_progress", "In-Progress"),
        (TITLE + "## Status\n\nChanges Required\n", "in_progress", "Changes Required"),
        (TITLE + "## Status\n\nReady for Done\n", "review", "Ready for Done"),
        (TITLE + "## Status\n\nBlocked\n", "blocked", "Blocked"),
        # Not a workflow state: unknown, never a guess.
        (TITLE + "## Status\n\nSuperseded\n", "unknown", "Superseded"),
        (TITLE + "## Status\n\nRelocated to story 3.7\n", "unknown", None),
        (TITLE + "## Status\n\nShelved\n", "unknown", "Shelved"),
        (TITLE + "## Status\n\nDeferred\n", "unknown", "Deferred"),
        (TITLE + "## Status\n\nTo Do\n", "unknown", "To Do"),
        (TITLE + "## Status\n\nReady\n", "unknown", "Ready"),
        (TITLE + '## Status\n\n"Planning"\n', "unknown", "Planning"),
        (TITLE + "## Status\n\nDraft | Approved | InProgress | Review | Done\n", "unknown", None),
        (
            TITLE + "## Status\n\n<!-- Draft, Approved, InProgress, Review, Done -->\n",
            "unknown",
            None,
        ),
        # No declaration at all.
        (TITLE + "## Story\n\nStatus: Draft\n", "unknown", None),
        (TITLE + "## Status Report\n\nDraft\n", "unknown", None),
        (TITLE + "## Status\n\n## Story\n\nbody\n", "unknown", None),
        ("```\n## Status\n\nDone\n```\n", "unknown", None),
    ],
)
def test_story_status_forms_and_values(text: str, state: str, value: str | None) -> None:
    status = read_story_status(text)
    assert status.state == state
    if value is not None:
        assert read_status(text) == value
    if status.raw is not None:
        assert status.raw.strip() in text  # the raw text is kept as written


def test_declarations_that_disagree_are_unknown_with_both_raw_values() -> None:
    text = TITLE + "## Status\n\nDraft\n\n## Notes\n\n## Status\n\nDone\n"
    status = read_story_status(text)
    assert status.state == "unknown" and status.raw == "Draft | Done"


def test_declarations_that_agree_are_one_state() -> None:
    text = TITLE + "## Status\n\nDone\n\n## Later\n\n## Status: Completed ✅\n"
    assert read_story_status(text).state == "done"


def test_a_status_inside_another_section_is_a_note_not_the_storys() -> None:
    text = TITLE + "## Status\n\nDraft\n\n## Dev Agent Record\n\n### Status\n\nDone\n"
    assert read_story_status(text).state == "draft"
    text = TITLE + "## Status\n\nReview\n\n## QA Results\n\n**Status:** PASS\n"
    assert read_story_status(text).state == "review"


def test_a_status_far_down_the_file_still_counts() -> None:
    text = TITLE + "## Story\n\n" + "line\n" * 1000 + "\n## Status\n\nApproved\n"
    assert read_story_status(text).state == "approved"


def test_front_matter_is_the_last_resort() -> None:
    text = "---\nstatus: done\n---\n" + TITLE + "## Status\n\nDraft\n"
    assert read_story_status(text).state == "draft"


def test_parse_state_of_nothing_is_unknown() -> None:
    assert parse_state(None) == "unknown" and parse_state("") == "unknown"


# --- set_status: edits what it read, in its own form ---------------------------------------------

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


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("## Status: Draft\n\n## Story\n", "## Status: Approved\n\n## Story\n"),
        ("## Status\n**Draft**\n## Story\n", "## Status\n**Approved**\n## Story\n"),
        ("**Status:** Draft\n\n## Story\n", "**Status:** Approved\n\n## Story\n"),
        ("**Status**: Draft ✏️\n", "**Status**: Approved\n"),
        ("- **Status:** Draft\n", "- **Status:** Approved\n"),
        ("Status: Draft (needs PO)\n", "Status: Approved\n"),
        ("## Status\n\nStatus: Draft\n", "## Status\n\nStatus: Approved\n"),
        ("## Status\n\n- Draft\n", "## Status\n\n- Approved\n"),
    ],
)
def test_set_status_keeps_the_declarations_form(tmp_path: Path, before: str, after: str) -> None:
    story = write(tmp_path / "1.1.story.md", TITLE + before)
    set_status(story, "Approved")
    assert story.read_text() == TITLE + after
    assert read_story_status(story.read_text()).state == "approved"


def test_set_status_edits_front_matter_when_that_is_all_there_is(tmp_path: Path) -> None:
    text = "---\nid: 1.1\nstatus: draft\n---\n" + TITLE + "Body\n"
    story = write(tmp_path / "1.1.story.md", text)
    set_status(story, "Approved")
    assert story.read_text() == text.replace("status: draft", "status: Approved")


def test_set_status_keeps_crlf_a_bom_and_a_missing_final_newline(tmp_path: Path) -> None:
    story = tmp_path / "1.1.story.md"
    story.write_bytes(
        b"\xef\xbb\xbf# Story 1.1: X\r\n\r\n**Status:** Draft\r\n\r\n## Story\r\nbody"
    )
    set_status(story, "Approved")
    assert story.read_bytes() == (
        b"\xef\xbb\xbf# Story 1.1: X\r\n\r\n**Status:** Approved\r\n\r\n## Story\r\nbody"
    )
    assert read_story_status(story.read_bytes().decode("utf-8-sig")).state == "approved"


def test_set_status_edits_every_agreeing_declaration(tmp_path: Path) -> None:
    text = TITLE + "## Status\n\nDone\n\n## Later\n\n## Status: Done ✅\n"
    story = write(tmp_path / "1.1.story.md", text)
    set_status(story, "InProgress")
    assert (
        story.read_text()
        == TITLE + "## Status\n\nInProgress\n\n## Later\n\n## Status: InProgress\n"
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
    assert story.read_text().startswith("## Status\n\nApproved\n\n")
    assert read_story_status(story.read_text()).state == "approved"


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
        ("**Decision:** ✅ GO\n", ["GO"]),
        ("**Decision**: GO\n", ["GO"]),
        ("### Decision: GO\n", ["GO"]),
        ("### Decision\n\n**NO-GO**\n", ["NO-GO"]),
        ("Final Assessment: NO-GO\n", ["NO-GO"]),
        ("**Final Assessment**: GO\n", ["GO"]),
        ("- Decision: no go\n", ["NO-GO"]),
        ("> Decision: `GO`\n", ["GO"]),
        ("PO Decision: NO-GO\n", ["NO-GO"]),
        ("| Decision | GO |\n", ["GO"]),
        ("Decision: CONDITIONAL GO - add the missing test\n", ["CONDITIONAL GO"]),
        ("Decision: GO (conditional: fix AC 2)\n", ["CONDITIONAL GO"]),
        # The validate-next-story template lists both options: not a decision.
        ("#### Final Assessment\n\n- **GO**: ready\n- **NO-GO**: needs fixes\n", []),
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


def test_a_conditional_go_keeps_its_conditions() -> None:
    (decision,) = read_po_decision_lines("Decision: CONDITIONAL GO - add the missing test\n")
    assert decision == ("CONDITIONAL GO", "add the missing test")


# --- QA gates: names, keys, values, broken YAML --------------------------------------------------


def gate(paths: BmadPaths, name: str, body: str, mtime_ns: int = T0) -> Path:
    return write(paths.gates / name, body, mtime_ns)


@pytest.mark.parametrize(
    ("name", "story_id", "belongs"),
    [
        ("1.1-add-a-todo.yml", "1.1", True),
        ("1.1-add-a-todo.yaml", "1.1", True),
        ("AB.3-checkout.yml", "AB.3", True),
        ("2.3A-offline.yml", "2.3A", True),
        ("2.3A-offline.yml", "2.3", False),
        ("1.1.1-x.yml", "1.1", False),
        ("1.10-x.yml", "1.1", False),
        ("11.1-x.yml", "1.1", False),
        ("epic1.story1-add-a-todo.yml", "1.1", True),
        ("1.1-add-a-todo.yml.bak", "1.1", False),
    ],
)
def test_which_gate_file_names_belong_to_a_story(
    tmp_path: Path, name: str, story_id: str, belongs: bool
) -> None:
    paths = BmadPaths.load(tmp_path)
    path = gate(paths, name, "gate: PASS\n")
    assert (path in gate_files(paths, story_id)) is belongs


def test_gate_files_in_the_places_real_agents_put_them(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    literal = write(tmp_path / "qa" / "qaLocation" / "gates" / "1.1-x.yml", "gate: PASS\n")
    in_core = write(tmp_path / ".bmad-core" / "qa" / "gates" / "1.1-y.yml", "gate: PASS\n")
    per_story = write(paths.gates / "1.1" / "review.yml", "gate: PASS\n")
    assert {literal, in_core, per_story} <= set(gate_files(paths, "1.1"))


def test_a_gate_named_without_an_id_counts_by_a_quoted_story_field(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    quoted = gate(paths, "add-a-todo.yml", "story: '1.1'\ngate: PASS\n")
    gate(paths, "other-story.yml", "story: 1.10\ngate: PASS\n")  # a float: 1.1 to YAML
    assert gate_files(paths, "1.1") == [quoted]
    assert gate_files(paths, "1.10") == []  # never trusted as a number


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        ("gate: PASS\n", "PASS"),
        ("gate: 'CONCERNS'\n", "CONCERNS"),
        ('gate: "PASS" # PASS|CONCERNS|FAIL|WAIVED\n', "PASS"),
        ("gate: FAIL\n", "FAIL"),
        ("gate: WAIVED\n", "WAIVED"),
        ("gate: PASSED\n", "PASS"),
        ("gate: APPROVED\n", "PASS"),
        ("gate: PASS with CONCERNS\n", "CONCERNS"),
        ("gate: PASS_WITH_CONCERNS\n", "CONCERNS"),
        ("decision: CONCERNS\n", "CONCERNS"),
        ("gate_decision: FAIL\n", "FAIL"),
        ("gate_status: PASS\n", "PASS"),
        ("status: PASS\n", "PASS"),
        ("gate:\n  decision: WAIVED\n  reason: x\n", "WAIVED"),
        ("gate: EXCELLENT\n", "unknown"),
        ("gate: DEPENDENCY_BLOCKED\n", "unknown"),
        ("gate: PENDING\n", "unknown"),
        ("gate: [PASS]\n", "unknown"),
        # YAML that does not parse is read line by line.
        ("gate: PASS\nstatus_reason: 'it\\'s fine'\n", "PASS"),
        ("story: '1.1'\nreason: a: b\ngate: CONCERNS\n", "CONCERNS"),
        ("gate:\n  decision: FAIL\n   bad: [indent\n", "FAIL"),
        # No verdict at all: not a gate (yet).
        ("schema: 1\n", None),
        ("", None),
        ("# Trace matrix\n\n- [ ] AC 1\n", None),
    ],
)
def test_gate_verdicts(body: str, verdict: str | None) -> None:
    assert read_gate_text(body) == verdict


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


def test_an_unknown_verdict_is_reported_with_its_raw_value(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    gate(paths, "1.1-x.yml", "gate: EXCELLENT # the best\n")
    found = find_gate(paths, "1.1")
    assert found is not None and found.value == "unknown" and found.raw.startswith("EXCELLENT")


def test_the_watermark_excludes_older_gate_files(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    gate(paths, "1.1-x.yml", "gate: PASS\n", T0)
    assert find_gate(paths, "1.1", since_ns=T0 + 1) is None
    found = find_gate(paths, "1.1", since_ns=T0)  # at the watermark counts
    assert found is not None and found.value == "PASS"


# --- Gate lines in the story ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Gate: PASS → docs/qa/gates/1.1-x.yml", ("PASS", "docs/qa/gates/1.1-x.yml")),
        ("Gate: **PASS** → `docs/qa/gates/1.1-x.yml`", ("PASS", "docs/qa/gates/1.1-x.yml")),
        (
            "**Gate: PASS** ✅ → qa.qaLocation/gates/1.1-x.yml",
            ("PASS", "qa.qaLocation/gates/1.1-x.yml"),
        ),
        (
            "- Gate: CONCERNS -> [1.1-x.yml](../qa/gates/1.1-x.yml)",
            ("CONCERNS", "../qa/gates/1.1-x.yml"),
        ),
        ("**Gate:** FAIL", ("FAIL", None)),
        ("Gate: PASSED", ("PASS", None)),
        ("| 2025-01-01 | 0.3 | QA review, Gate: FAIL | Quinn |", ("FAIL", None)),
    ],
)
def test_gate_line_shapes(line: str, expected: tuple[str, str | None]) -> None:
    assert read_story_gates(f"## QA Results\n\n{line}\n") == [expected]


def test_an_unresolved_or_linked_gate_path_is_mapped(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story = paths.stories / "1.1.story.md"
    assert resolve_gate_path(paths, story, "qa.qaLocation/gates/1.1-x.yml") == (
        paths.qa / "gates" / "1.1-x.yml"
    )
    assert resolve_gate_path(paths, story, "../qa/gates/1.1-x.yml") == (
        (paths.stories / ".." / "qa" / "gates" / "1.1-x.yml").resolve()
    )
    assert resolve_gate_path(paths, story, "docs/qa/gates/1.1-x.yml") == (
        paths.root / "docs" / "qa" / "gates" / "1.1-x.yml"
    )


def story_with(paths: BmadPaths, qa_results: str, mtime_ns: int = T0) -> Path:
    return write(paths.stories / "1.1.story.md", STORY + "\n" + qa_results, mtime_ns)


def test_a_new_gate_line_naming_no_file_is_the_fallback(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story = story_with(paths, "### Gate Status\n\nGate: CONCERNS\n", T0)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("CONCERNS", story)
    # A line that was there before the stage began is an old verdict...
    assert find_gate(paths, "1.1", since_ns=T0, story_gates_before=1) is None
    # ...and a story not touched since the watermark holds none.
    assert find_gate(paths, "1.1", since_ns=T0 + 1) is None


def test_a_gate_line_anywhere_in_the_story_counts(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    text = STORY.replace("## QA Results\n", "") + "## Notes\n\nQA said **Gate:** FAIL today\n"
    write(paths.stories / "1.1.story.md", text, T0)
    found = find_gate(paths, "1.1")
    assert found is not None and found.value == "FAIL"


def test_only_lines_beyond_the_baseline_count(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story_with(paths, "### Review Date: 1\n\nGate: FAIL\n\n### Review Date: 2\n\nGate: PASS\n")
    found = find_gate(paths, "1.1", story_gates_before=1)
    assert found is not None and found.value == "PASS"
    assert find_gate(paths, "1.1", story_gates_before=2) is None


def test_a_gate_line_naming_a_file_waits_for_that_file(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    named = "docs/qa/gates/epic-1.1-add-a-todo.yml"  # a real-world name outside `1.1-*.yml`
    story_with(paths, f"### Gate Status\n\nGate: PASS → {named}\n", T0)
    assert find_gate(paths, "1.1", since_ns=T0) is None  # QA has not written the file yet
    gate_file = write(tmp_path / named, "gate: PASS\n", T0 + SECOND)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("PASS", gate_file)


def test_an_unresolved_gate_line_finds_the_configured_folders_file(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    story_with(paths, "Gate: PASS → qa.qaLocation/gates/epic-1.1-add-a-todo.yml\n", T0)
    gate_file = write(paths.gates / "epic-1.1-add-a-todo.yml", "gate: CONCERNS\n", T0 + SECOND)
    found = find_gate(paths, "1.1", since_ns=T0)
    assert found is not None and (found.value, found.path) == ("CONCERNS", gate_file)


def test_a_gate_line_naming_a_stale_file_is_not_done(tmp_path: Path) -> None:
    paths = BmadPaths.load(tmp_path)
    named = paths.root / "docs" / "qa" / "other" / "epic-1.1-x.yml"
    story_with(paths, "Gate: PASS → docs/qa/other/epic-1.1-x.yml\n", T0 + SECOND)
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


# --- Change Log ----------------------------------------------------------------------------------


def test_a_change_log_row_follows_the_tables_own_columns(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", STORY)
    add_change_log_row(story, "PO validation GO (docs/qa/assessments/r.md)", "bmad-orchestrator")
    text = story.read_text()
    (row,) = [line for line in text.splitlines() if "PO validation GO" in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:] == ["0.2", "PO validation GO (docs/qa/assessments/r.md)", "bmad-orchestrator"]
    assert text.index(row) < text.index("## Dev Agent Record")
    assert text.replace(row + "\n", "") == STORY  # nothing else moved


def test_a_story_without_a_change_log_gets_one(tmp_path: Path) -> None:
    story = write(tmp_path / "1.1.story.md", TITLE + "## Status\n\nDraft\n")
    add_change_log_row(story, "PO validation GO", "bmad-orchestrator")
    text = story.read_text()
    assert text.startswith(TITLE + "## Status\n\nDraft\n")
    assert "## Change Log" in text and "| PO validation GO | bmad-orchestrator |" in text


# --- each agent CLI calls up the BMad agents its own way --------------------------------------


def test_each_cli_calls_up_the_agent_its_own_way(project: Path) -> None:
    from orchestrator.methods import StageRequest, get_method

    v4 = get_method("bmad-v4").open(project)
    heads = {
        style: v4.prompt(StageRequest("dev", "1.1", activation=style)).splitlines()[0]
        for style in ("slash", "mention", "agent", "file")
    }
    assert heads == {
        "slash": "/BMad:agents:dev *develop-story docs/stories/1.1.story.md",
        "mention": "As dev (the BMad Developer agent, .bmad-core/agents/dev.md), run "
        "*develop-story docs/stories/1.1.story.md",
        "agent": "*develop-story docs/stories/1.1.story.md",
        "file": "Read .bmad-core/agents/dev.md and become that BMad Developer agent, following "
        "its activation instructions; then run *develop-story docs/stories/1.1.story.md",
    }


def test_opencode_agents_are_found_with_or_without_the_installers_prefix(project: Path) -> None:
    from orchestrator.methods import get_method

    v4 = get_method("bmad-v4").open(project)
    assert v4.agent_name("sm") == "sm"  # no opencode config: the plain name
    write(project / "opencode.jsonc", '{\n  // "bmad-sm": no\n  "agent": {"bmad-sm": {},},\n}\n')
    assert v4.agent_name("sm") == "bmad-sm"


@pytest.mark.parametrize(
    ("profile", "missing"),
    [
        ("claude", ".claude/commands/BMad/agents/qa.md is missing"),
        ("gemini", ".gemini/commands/BMad/agents/qa.toml is missing"),
        ("codex", "AGENTS.md is missing"),
        ("opencode", "has no agent 'qa' (or 'bmad-qa')"),
        ("copilot", ".bmad-core/agents/qa.md is missing"),
    ],
)
def test_preflight_names_what_a_cli_lacks_and_the_installer_line_for_it(
    project: Path, profile: str, missing: str
) -> None:
    from orchestrator.methods import get_method

    problems, _ = get_method("bmad-v4").open(project).preflight(agents={"qa": profile})
    (problem,) = problems
    assert missing in problem
    assert problem.startswith(f"the {profile} agent cannot call up the BMad agents")
    ide = {"claude": "claude-code", "copilot": "github-copilot"}.get(profile, profile)
    assert problem.endswith(f"--ide {ide}")
    assert get_method("bmad-v4").open(project).preflight(agents={"qa": "generic"})[0] == []
