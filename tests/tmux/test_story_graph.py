"""The story graph end to end: real tmux sessions running the simulated agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.graphs.story import build_story_graph
from orchestrator.methods.bmad_v4 import BmadPaths, find_story_file, read_po_decisions, read_status
from orchestrator.state import GitSettings, StoryPolicy, StoryState
from orchestrator.state.context import StoryContext
from orchestrator.tmux import TmuxAgentManager
from tests.helpers import recorded_prompts, runs, story_context


@pytest.fixture
async def run_story(project: Path, socket: str) -> AsyncIterator:
    contexts: list[StoryContext] = []

    async def run(*sim_args: str, policy: StoryPolicy | None = None, **overrides) -> StoryState:
        context = story_context(project, socket, *sim_args, **overrides)
        contexts.append(context)
        graph = build_story_graph().compile()
        output = await graph.ainvoke(
            {"story_id": "1.1", "policy": policy or StoryPolicy()}, context=context, version="v2"
        )
        # Whatever happened, the story left no session behind on its server.
        assert await context.manager().list_sessions() == []
        return output.value

    yield run
    for context in contexts:
        manager: TmuxAgentManager = context.manager()
        await manager.kill_all()
        manager.server.kill()


def runs_of_1_1(project: Path) -> dict[str, int]:
    return runs(project).get("1.1", {})


async def test_a_story_goes_from_draft_to_done(run_story, project: Path) -> None:
    final = await run_story()
    assert final.result == "done", final.failure_reason
    assert final.outcomes == {
        "sm": "drafted",
        "po": "approved",
        "dev": "implemented",
        "qa": "PASS",
        "integrate": "shared",
    }
    story = find_story_file(BmadPaths.load(project).stories, "1.1")
    assert story is not None and final.story_file == str(story)
    assert read_status(story.read_text()) == "Done"
    assert [r.stage for r in final.runs] == ["sm", "po", "dev", "qa"]
    assert all(Path(r.log_path).exists() for r in final.runs)
    assert set(final.timings) == {"sm", "po", "dev", "qa", "integrate"}
    assert final.recovery_log == []
    assert runs_of_1_1(project) == {"sm": 1, "po": 1, "dev": 1, "qa": 1}


async def test_po_no_go_once_then_go(run_story, project: Path) -> None:
    # The revision edits the story in three writes over a second, as real agents do.
    final = await run_story("--po-nogo", "1", "--revise-in-steps")
    assert final.result == "done", final.failure_reason
    assert final.po_revisions == 1
    assert runs_of_1_1(project)["sm"] == 2 and runs_of_1_1(project)["po"] == 2
    revise = recorded_prompts(project, "agents:sm")
    assert "validation report" not in revise[0]
    assert final.po_report is not None and Path(final.po_report).exists()
    report = Path(final.po_report).relative_to(project)
    assert f"per the findings in the PO validation report {report}" in revise[1]
    # The revision was not cut off: its last write logged it in the Change Log.
    text = Path(final.story_file or "").read_text()
    assert "Revised per PO validation" in text
    assert read_po_decisions(Path(final.po_report).read_text()) == ["GO"]
    assert f"PO validation GO ({report}); Approved" in text  # the orchestrator's row


async def test_po_no_go_past_the_bound_fails(run_story, project: Path) -> None:
    final = await run_story("--po-nogo", "5", policy=StoryPolicy(max_revisions=1))
    assert final.result == "failed"
    assert "NO-GO" in (final.failure_reason or "")
    assert runs_of_1_1(project)["po"] == 2 and "dev" not in runs_of_1_1(project)


async def test_qa_fail_once_then_pass_sends_dev_the_review_qa_prompt(
    run_story, project: Path
) -> None:
    final = await run_story("--qa-fail", "1")
    assert final.result == "done", final.failure_reason
    assert final.qa_fix_rounds == 1
    dev_prompts = recorded_prompts(project, "agents:dev")
    assert len(dev_prompts) == 2
    assert "*develop-story" in dev_prompts[0] and "*review-qa" in dev_prompts[1]
    assert [r.outcome for r in final.runs if r.stage == "qa"] == ["FAIL", "PASS"]


async def test_qa_fail_past_the_bound_fails(run_story, project: Path) -> None:
    final = await run_story("--qa-fail", "9", policy=StoryPolicy(max_fix_rounds=2))
    assert final.result == "failed"
    assert final.failure_reason == "QA gate FAIL after 2 fix round(s); max_fix_rounds is 2"
    assert runs_of_1_1(project)["qa"] == 3 and runs_of_1_1(project)["dev"] == 3


async def test_dev_blocked_fails(run_story, project: Path) -> None:
    final = await run_story("--dev-blocked", "all")
    assert final.result == "failed"
    assert final.failure_reason == "Dev reported the story Blocked"
    assert "qa" not in runs_of_1_1(project)


async def test_an_agent_that_exits_at_start_is_retried(run_story, project: Path) -> None:
    final = await run_story(
        "--misbehave", "exit-at-start", "--misbehave-times", "1", "--misbehave-stage", "sm"
    )
    assert final.result == "done", final.failure_reason
    (entry,) = final.recovery_log
    assert (entry.stage, entry.attempt, entry.problem, entry.exit_status) == (
        "sm",
        1,
        "agent_gone",
        3,
    )
    assert entry.action == "retry"
    assert [r.attempt for r in final.runs if r.stage == "sm"] == [1, 2]
    assert final.runs[0].session == final.runs[1].session == "bmad-sm-1-1"
    assert final.runs[0].log_path != final.runs[1].log_path


async def test_an_agent_that_hangs_times_out_and_fails(run_story, project: Path) -> None:
    final = await run_story(
        "--misbehave",
        "hang",
        "--misbehave-stage",
        "dev",
        policy=StoryPolicy(max_attempts={"dev": 1}),
        dev={"timeout": 1.5},
    )
    assert final.result == "failed"
    assert final.failure_reason == "dev failed 1 attempt(s): no output after 1.5s"
    (entry,) = final.recovery_log
    assert entry.problem == "timeout" and entry.action == "give up"
    assert any("thinking" in line for line in entry.last_screen)


async def test_a_stalled_agent_is_retried_then_fails(run_story, project: Path) -> None:
    final = await run_story(
        "--misbehave", "hang", "--misbehave-stage", "qa", qa={"stall_timeout": 1.0}
    )
    assert final.result == "failed"
    assert [e.problem for e in final.recovery_log] == ["stalled", "stalled"]
    assert [e.action for e in final.recovery_log] == ["retry", "give up"]
    # The recovery log shows what was on screen when the agent stalled (the README promises it).
    assert all(any("thinking" in line for line in e.last_screen) for e in final.recovery_log)


async def test_an_embedded_graph_runs_a_story_in_its_own_worktree(
    project: Path, socket: str
) -> None:
    from tests.helpers import git, git_repo, write

    write(project / ".gitignore", ".bmad-orchestrator/\n.bmad-core/\nprompts.jsonl\n")
    write(project / "README.md", "# project\n")
    git_repo(project)
    context = story_context(project, socket, "--dev-edit", "src/feature.txt").model_copy(
        update={"isolation": "worktree", "git": GitSettings(branch="team/stories")}
    )
    context = StoryContext.model_validate(context.model_dump())  # as JSON from Studio
    graph = build_story_graph().compile()
    try:
        final = StoryState.model_validate(await graph.ainvoke({"story_id": "1.1"}, context=context))
    finally:
        await context.manager().kill_all()
        context.manager().server.kill()
    assert final.result == "done", final.failure_reason
    assert final.outcomes["integrate"] == "merged" and final.branch == "team/stories--1.1"
    assert git(project, "show", "team/stories:src/feature.txt") == "story 1.1 was here\n"
    assert not (project / "src").exists()  # the project folder itself is untouched
    assert not (project / "docs").exists()
