"""Stories as real projects hold them: never-destructive starts, `status`, invalid gates, PO
reports with conditions. The CLI in a subprocess, real tmux, the simulated agent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli, report, runs, sessions_left, stories, write_epic

HEAD = "# Story {id}: Something\n\n"
BODY = "\n\n## Tasks / Subtasks\n\n- [ ] Task 1\n\n## Dev Agent Record\n\n## QA Results\n"


def story(demo: Path, story_id: str, status_block: str, name: str | None = None) -> Path:
    folder = demo / "docs" / "stories"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{story_id}.story.md")
    path.write_text(HEAD.format(id=story_id) + status_block + BODY)
    return path


def test_existing_stories_start_where_they_stand_and_unknown_ones_not_at_all(
    demo: Path, socket: str
) -> None:
    story(demo, "1.1", "## Status\n\nDone ✅")
    superseded = story(demo, "1.2", "**Status:** Superseded")
    story(demo, "1.3", "## Status\n\nStatus: Ready for Done", name="1.3.next.js-14-setup.md")
    before = superseded.read_bytes()
    result = cli(write_epic(demo, socket))  # 1.2 depends on 1.1
    assert result.returncode == 1, result.stdout + result.stderr
    by_id = stories(report(demo))
    assert by_id["1.1"]["result"] == "already done"
    skipped = by_id["1.2"]
    assert skipped["result"] == "skipped" and skipped["status_raw"] == "Superseded"
    assert skipped["story_file"] == "docs/stories/1.2.story.md"
    assert "--only 1.2 --start-at" in skipped["reason"]
    assert by_id["1.3"]["result"] == "done"
    assert runs(demo) == {"1.3": {"qa": 1}}  # Ready for Done: QA confirms, nothing re-drafted
    assert superseded.read_bytes() == before  # never touched

    # The user says where it starts.
    plain = write_epic(demo, socket, agent={"profile": "simulated"})
    started = cli(plain, "--only", "1.2", "--start-at", "dev")
    assert started.returncode == 0, started.stdout + started.stderr
    assert runs(demo)["1.2"] == {"dev": 1, "qa": 1}
    assert await_nothing_left(demo, socket)


def await_nothing_left(demo: Path, socket: str) -> bool:
    import asyncio

    return asyncio.run(sessions_left(demo, socket)) == []


def test_start_at_needs_only(demo: Path, socket: str) -> None:
    result = cli(write_epic(demo, socket), "--start-at", "dev")
    assert result.returncode == 2 and "--start-at needs --only" in result.stderr


def test_dependants_of_an_unknown_story_are_skipped(demo: Path, socket: str) -> None:
    story(demo, "1.1", "## Status\n\nShelved")
    result = cli(write_epic(demo, socket, stories=["1.1", {"id": "1.2", "depends_on": ["1.1"]}]))
    assert result.returncode == 1
    by_id = stories(report(demo))
    assert by_id["1.1"]["result"] == "skipped"
    assert (by_id["1.2"]["result"], by_id["1.2"]["reason"]) == (
        "skipped",
        "depends on 1.1, which skipped",
    )
    assert runs(demo) == {}


def test_status_json_says_where_each_story_stands(demo: Path, socket: str) -> None:
    story(demo, "1.1", "- **Status:** Done ✅")
    story(demo, "1.2", "## Status\n\nDraft\n\n## Notes\n\n## Status\n\nDone")
    gates = demo / "docs" / "qa" / "gates"
    gates.mkdir(parents=True)
    (gates / "1.1-something.yml").write_text('gate: "PASS" # PASS|CONCERNS|FAIL|WAIVED\n')
    epic = write_epic(demo, socket)
    result = cli("status", epic, "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["story"]: row for row in json.loads(result.stdout)}
    assert rows["1.1"] == {
        "story": "1.1",
        "file": "docs/stories/1.1.story.md",
        "status_raw": "Done ✅",
        "state": "done",
        "gate_file": "docs/qa/gates/1.1-something.yml",
        "gate": "PASS",
        "start": "done",
        "reason": None,
        "waiting": None,
    }
    assert rows["1.2"]["state"] == "unknown" and rows["1.2"]["start"] is None
    assert rows["1.2"]["status_raw"] == "Draft | Done" and "--start-at" in rows["1.2"]["reason"]
    assert rows["1.3"]["file"] is None and rows["1.3"]["start"] == "sm"
    table = cli("status", epic)
    assert table.returncode == 0 and "not started" in table.stdout and "Done ✅" in table.stdout
    assert not (demo / ".bmad-orchestrator" / "runs").exists()  # status starts nothing


def test_an_invented_gate_verdict_is_invalid_output_not_a_stall(demo: Path, socket: str) -> None:
    epic = write_epic(
        demo,
        socket,
        stories=["1.1"],
        agent={"profile": "simulated", "flags": ["--qa-gate", "EXCELLENT"]},
        stages={"qa": {"max_attempts": 1, "stall_timeout": "10m"}},
    )
    result = cli(epic)
    assert result.returncode == 1, result.stdout + result.stderr
    (qa,) = [r for r in stories(report(demo))["1.1"]["runs"] if r["stage"] == "qa"]
    assert qa["end"] == "invalid_output" and qa["seconds"] < 60
    assert "docs/qa/gates/1.1-" in qa["detail"] and "'EXCELLENT'" in qa["detail"]


def test_a_conditional_go_follows_po_conditional(demo: Path, socket: str) -> None:
    flags = ["--po-conditional"]
    approve = write_epic(
        demo, socket, stories=["1.1"], agent={"profile": "simulated", "flags": flags}
    )
    result = cli(approve)
    assert result.returncode == 0, result.stdout + result.stderr
    done = stories(report(demo))["1.1"]
    assert done["outcomes"]["po"] == "approved"
    assert done["po_conditions"] == ["add a test for the empty title"]
    assert done["po_report"].endswith(".md")
    text = (demo / "docs" / "stories" / "1.1.story.md").read_text()
    assert "PO validation CONDITIONAL GO (docs/qa/assessments/1.1-po-validation-" in text

    reject = write_epic(
        demo,
        socket,
        stories=["1.3"],
        po_conditional="reject",
        max_revisions=0,
        agent={"profile": "simulated", "flags": flags},
    )
    result = cli(reject)
    assert result.returncode == 1
    failed = stories(report(demo))["1.3"]
    assert failed["outcomes"]["po"] == "rejected" and failed["result"] == "failed"


def test_status_never_prints_a_repositorys_escape_sequences(demo: Path, socket: str) -> None:
    # A story whose Status line would write the clipboard (OSC 52) and clear the screen.
    story(demo, "1.1", "## Status\n\n\x1b]52;c;ZXZpbA==\x07Draft\x1b[2J")
    epic = write_epic(demo, socket, stories=["1.1"])
    result = cli("status", epic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b]52" in result.stdout  # shown, not obeyed


def test_a_status_moved_in_the_dev_record_instead_of_the_storys_is_unknown(
    demo: Path, socket: str
) -> None:
    """The agent set `### Status` under the Dev Agent Record to Ready for Review and left the
    story's own `## Status` at Approved: once read as Approved, so Dev ran again."""
    path = story(demo, "1.1", "## Status\n\nApproved")
    path.write_text(
        path.read_text().replace(
            "## Dev Agent Record\n", "## Dev Agent Record\n\n### Status\n\nReady for Review\n"
        )
    )
    before = path.read_bytes()
    (row,) = [r for r in json.loads(cli("status", write_epic(demo, socket), "--json").stdout)
              if r["story"] == "1.1"]  # fmt: skip
    assert (row["state"], row["start"]) == ("unknown", None), row
    assert "the declarations disagree" in row["reason"] and "Ready for Review" in row["reason"]
    result = cli(write_epic(demo, socket, stories=["1.1"]))
    assert result.returncode == 1, result.stdout + result.stderr
    assert stories(report(demo))["1.1"]["result"] == "skipped"
    assert runs(demo) == {} and path.read_bytes() == before
    # Agreeing, or behind the story's own (Done after QA, the note left at Review), the note is
    # no obstacle.
    for own, note, start in (("Approved", "Approved", "dev"), ("Done", "Ready for Review", "done")):
        path.write_text(before.decode().replace("Approved", own).replace("Ready for Review", note))
        (row,) = [r for r in json.loads(cli("status", write_epic(demo, socket), "--json").stdout)
                  if r["story"] == "1.1"]  # fmt: skip
        assert row["start"] == start, row
