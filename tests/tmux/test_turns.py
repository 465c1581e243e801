"""A stage ends when its output is valid and the agent's turn is over; stops get nudges.

One stage node at a time (`run_stage`), real tmux on a private socket, the simulated agent (or a
shell script, or the simulated agent standing in for Claude with the real settings file).
"""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents.clis.base import (
    ATTENTION_HOOK,
    ENDED_HOOK,
    SIGNAL_HOOK,
    SUBMITTED_HOOK,
    TURN_END_HOOK,
)
from orchestrator.agents.simulated import QUESTION
from orchestrator.nodes.stage import run_stage
from orchestrator.stages import STAGES
from orchestrator.state import AttemptRecord, StoryPolicy, StoryState
from orchestrator.state.context import StoryContext
from tests.helpers import events, recorded_prompts, simulated_argv, story_context, typed_text

REVISABLE = """# Story 1.1: Add a todo

## Status

Draft

## Acceptance Criteria

1. A todo can be added with a title.

## Tasks / Subtasks

- [ ] Task 1: Implement AC 1 (AC: 1)
  - [ ] Subtask 1.1: Add a test for AC 1

## Change Log

| Date | Version | Description | Author |
|---|---|---|---|

## Dev Agent Record

## QA Results
"""

Runner = Callable[..., Any]


@pytest.fixture
async def stage(project: Path, socket: str) -> AsyncIterator[Runner]:
    """Run one stage node: `await stage("sm", *sim_args, settle=..., ...)` -> (update, record)."""
    contexts: list[StoryContext] = []

    async def run(
        name: str,
        *sim_args: str,
        settle: float = 30.0,
        nudges: int = 2,
        profile: str = "simulated",
        command: list[str] | None = None,
        state: StoryState | None = None,
        timeout: float = 60,
    ) -> tuple[dict[str, Any], AttemptRecord]:
        context = story_context(
            project,
            socket,
            *sim_args,
            profile=profile,
            command=command,
            settle=settle,
            nudges=nudges,
            **{stage: {"timeout": timeout} for stage in STAGES},
        )
        contexts.append(context)
        update = await run_stage(name, state or StoryState(story_id="1.1"), context)  # type: ignore[arg-type]
        (record,) = update["runs"]
        assert await context.manager().list_sessions() == []
        return update, record

    yield run
    for context in contexts:
        manager = context.manager()
        await manager.kill_all()
        manager.server.kill()


def revisable(project: Path) -> tuple[Path, StoryState]:
    """A drafted story the PO said NO-GO to, and the state of its revision."""
    story = project / "docs" / "stories" / "1.1.story.md"
    story.parent.mkdir(parents=True)
    story.write_text(REVISABLE)
    return story, StoryState(story_id="1.1", story_file=str(story), outcomes={"po": "rejected"})


# --- the four ways a turn ends -----------------------------------------------------------------


async def test_the_turn_end_signal_lets_a_revision_in_steps_finish(
    stage: Runner, project: Path
) -> None:
    story, state = revisable(project)
    _, record = await stage("sm", "--revise-in-steps", state=state, settle=30)
    assert (record.end, record.outcome, record.turn) == ("done", "drafted", "signal")
    text = story.read_text()
    assert "Revised per PO validation" in text and "Add the unit test for AC 1" in text
    assert record.seconds < 30  # the signal ended it, not the settle time


async def test_settle_zero_ends_at_the_first_valid_output(stage: Runner, project: Path) -> None:
    story, state = revisable(project)
    args = ("--revise-in-steps", "--step-pause", "5")
    _, record = await stage("sm", *args, state=state, settle=0)
    assert (record.end, record.turn) == ("done", "immediate")
    # Cut off after the first of three edits: what `settle: 0` (the old rule) costs.
    assert "Revised per PO validation" not in story.read_text()


async def test_the_agent_exiting_ends_the_turn(stage: Runner, project: Path) -> None:
    script = (
        "mkdir -p docs/stories && "
        "printf '# Story 1.1: x\\n\\n## Status\\n\\nDraft\\n' > docs/stories/1.1.story.md"
    )
    _, record = await stage("sm", profile="generic", command=["sh", "-c", script], settle=30)
    assert (record.end, record.outcome, record.turn) == ("done", "drafted", "exit")
    assert record.exit_status == 0 and record.seconds < 30


async def test_quiet_for_settle_ends_the_turn_of_an_agent_that_signals_nothing(
    stage: Runner, project: Path
) -> None:
    story, state = revisable(project)
    args = ("--quiet-turns", "--revise-in-steps", "--step-pause", "0.4")
    _, record = await stage("sm", *args, state=state, settle=1.5)
    assert (record.end, record.turn) == ("done", "quiet")
    assert record.seconds >= 1.5 + 2 * 0.4  # the steps, then a full settle of quiet
    assert "Revised per PO validation" in story.read_text()


async def test_qa_is_not_cut_off_between_the_gate_file_and_the_qa_results(
    stage: Runner, project: Path
) -> None:
    story = project / "docs" / "stories" / "1.1.story.md"
    story.parent.mkdir(parents=True)
    story.write_text(REVISABLE.replace("Draft", "Review", 1))
    _, record = await stage("qa", "--gate-first", "--step-pause", "0.5", settle=30)
    assert (record.end, record.outcome, record.turn) == ("done", "PASS", "signal")
    assert "Gate: PASS" in story.read_text()  # the part the Dev fix round reads


# --- nudges ------------------------------------------------------------------------------------


async def test_an_agent_that_ends_its_turn_without_output_is_nudged(
    stage: Runner, project: Path
) -> None:
    _, record = await stage("sm", "--misbehave", "idle-turn")
    assert (record.end, record.outcome) == ("done", "drafted")
    assert [n.reason for n in record.nudges] == ["turn_end"]
    typed = recorded_prompts(project)
    assert len(typed) == 2 and typed_text(typed[1]) == record.nudges[0].text
    assert len(typed[1]) < 200  # one short line typed, the nudge in a file it points to
    assert record.nudges[0].via == "typed"
    nudge = record.nudges[0].text
    assert nudge.startswith("Do not ask") and "docs/stories/1.1.story.md" in nudge


async def test_a_question_is_answered_by_a_nudge(stage: Runner, project: Path) -> None:
    _, record = await stage("sm", "--misbehave", "ask")
    assert (record.end, record.outcome) == ("done", "drafted")
    assert [n.reason for n in record.nudges] == ["attention"]


async def test_no_output_after_every_nudge_ends_as_needs_input(
    stage: Runner, project: Path
) -> None:
    # PO with no story to validate: the agent ends each turn having done nothing.
    update, record = await stage("po")
    assert record.end == "needs_input" and record.outcome is None
    assert [n.reason for n in record.nudges] == ["turn_end", "turn_end"]
    (entry,) = update["recovery_log"]
    assert entry.problem == "needs_input" and entry.action == "retry"
    assert any("no story file" in line for line in entry.last_screen)


async def test_no_nudges_allowed_means_needs_input_at_the_first_idle_turn(
    stage: Runner, project: Path
) -> None:
    _, record = await stage("sm", "--misbehave", "idle-turn", nudges=0)
    assert record.end == "needs_input" and record.nudges == []


# --- the claude profile ------------------------------------------------------------------------


def claude_stand_in(project: Path, *args: str) -> list[str]:
    """The simulated agent as Claude: Claude's input line, and `--settings` hooks it runs."""
    return simulated_argv("--input-prompt", "❯ ", "--record", str(project / "prompts.jsonl"), *args)


async def test_the_claude_profile_installs_its_hooks_for_one_invocation(
    stage: Runner, project: Path
) -> None:
    _, record = await stage("sm", profile="claude", command=claude_stand_in(project))
    assert (record.end, record.turn) == ("done", "signal")  # the Stop hook, run by the stand-in
    settings = project / ".bmad-orchestrator" / "run" / "bmad-sm-1-1.settings.json"
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    hooks = json.loads(settings.read_text())["hooks"]
    commands = {
        (event, entry.get("matcher")): [h["command"] for h in entry["hooks"]]
        for event, entries in hooks.items()
        for entry in entries
    }
    assert commands == {
        ("Stop", None): [TURN_END_HOOK],
        ("StopFailure", None): [ENDED_HOOK],
        ("PreToolUse", "AskUserQuestion"): [ATTENTION_HOOK],
        ("PermissionRequest", None): [SIGNAL_HOOK],
        ("Notification", "permission_prompt"): [SIGNAL_HOOK],
        ("UserPromptSubmit", None): [SUBMITTED_HOOK],
    }
    turn_end = project / ".bmad-orchestrator" / "run" / "bmad-sm-1-1.turn"
    assert stat.S_IMODE(turn_end.stat().st_mode) == 0o600  # written by the relay, owner-only
    (spawn,) = [e for e in events(project) if e["event"] == "spawn"]
    assert spawn["argv"][-4:-1] == ["--settings", str(settings), "--session-id"]  # then prompt


async def test_a_claude_question_is_answered_through_its_hook(stage: Runner, project: Path) -> None:
    _, record = await stage(
        "sm", profile="claude", command=claude_stand_in(project, "--misbehave", "ask")
    )
    assert (record.end, record.outcome) == ("done", "drafted")
    assert [(n.reason, n.via) for n in record.nudges] == [("attention", "hook")]
    assert record.nudges[0].text.startswith("Nobody can answer questions")
    assert len(recorded_prompts(project)) == 2  # the task, then the denial's reason: nothing typed
    assert not [e for e in events(project) if e["event"] == "deliver"]


async def test_with_a_person_for_questions_a_claude_question_ends_the_attempt_with_its_words(
    stage: Runner, project: Path
) -> None:
    state = StoryState(story_id="1.1", policy=StoryPolicy(gates=["on_needs_input"]))
    update, record = await stage(
        "sm",
        profile="claude",
        command=claude_stand_in(project, "--misbehave", "ask"),
        state=state,
    )
    assert (record.end, record.nudges) == ("needs_input", [])  # no nudge: a person answers
    (entry,) = update["recovery_log"]
    assert entry.detail == f"the agent asked: {QUESTION}"  # from the hook's payload
    (steer,) = [e for e in events(project) if e["event"] == "steer"]
    # The hook was given an answer ("a person will answer") and took it: no dialog left waiting.
    # What the CLI does with it after that races with the session's kill, so it is not asserted.
    assert steer["steered"] is True and steer["took"] is True


async def test_a_claude_stop_without_output_is_continued_through_its_hook(
    stage: Runner, project: Path
) -> None:
    _, record = await stage(
        "sm", profile="claude", command=claude_stand_in(project, "--misbehave", "idle-turn")
    )
    assert (record.end, record.outcome, record.turn) == ("done", "drafted", "signal")
    assert [(n.reason, n.via) for n in record.nudges] == [("turn_end", "hook")]
    assert recorded_prompts(project)[1] == record.nudges[0].text  # the Stop hook's reason
    assert not [e for e in events(project) if e["event"] == "deliver"]


async def test_nesting_variables_never_reach_the_agent(
    stage: Runner, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("CLAUDECODE", "CLAUDE_CODE_CHILD_SESSION", "CLAUDE_CODE_ENTRYPOINT"):
        monkeypatch.setenv(variable, "1")  # inherited by the tmux server this test starts
    script = (
        "env > env.txt; mkdir -p docs/stories && "
        "printf '# Story 1.1: x\\n\\n## Status\\n\\nDraft\\n' > docs/stories/1.1.story.md"
    )
    await stage("sm", profile="generic", command=["sh", "-c", script])
    env = (project / "env.txt").read_text()
    assert "CLAUDE" not in env
    assert "BMAD_TURN_END_FILE=" in env and "BMAD_ATTENTION_FILE=" in env


async def test_gemini_refusing_its_hooks_is_said_on_the_attempt(
    stage: Runner, project: Path
) -> None:
    # Gemini 0.61's own words, as its TUI draws them (cursor moves instead of some spaces).
    warning = (
        "\\033[33m⚠  Security\\033[1CWarning:\\033[1CSkipping\\033[1Csystem\\033[1Csettings"
        "\\033[1Cfile '/tmp/x/settings.json': Parent directory '/tmp' is insecure\\033[0m\\n"
    )
    script = (
        f"printf '{warning}'; mkdir -p docs/stories && "
        "printf '# Story 1.1: x\\n\\n## Status\\n\\nDraft\\n' > docs/stories/1.1.story.md"
    )
    _, record = await stage("sm", profile="gemini", command=["sh", "-c", script, "gemini"])
    assert (record.end, record.turn) == ("done", "exit")
    said = [w for w in record.warnings if w.startswith("gemini skipped its hooks")]
    assert said and "Skipping system settings file /tmp/x/settings.json" in said[0]
