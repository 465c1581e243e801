"""The real agent CLIs (the pinned npm builds), driven by the scripted model, through whole
stories on a real BMad v4.44.3 install: first-run screens, turn ends by the CLI's own signal,
usage as billed, questions and nudges through its hooks, a typed nudge confirmed by the CLI's
own evidence, a crash mid-stage. Each test runs once per CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents.prices import dollars, price_table
from orchestrator.agents.usage import ModelTokens
from orchestrator.methods.bmad_v4 import BmadPaths, find_story_file, read_status
from orchestrator.state import StoryState
from tests.helpers import events, typed_text
from tests.realcli.bmad import BmadBrain, Plan
from tests.realcli.clis import RealCli, with_env
from tests.realcli.drivers import DRIVERS, Driver
from tests.realcli.model import ModelServer, Usage

STAGES = ("sm", "po", "dev", "qa")
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(params=sorted(DRIVERS))
def cli(request: pytest.FixtureRequest) -> Driver:
    """Each real CLI in turn."""
    return DRIVERS[request.param]


@pytest.fixture
def asking(cli: Driver) -> Driver:
    """A CLI whose model can ask the user (others have no question tool to test)."""
    if not cli.asks:
        pytest.skip(f"{cli.name} offers the model no question tool")
    return cli


async def story(
    cli: Driver,
    real_cli: Callable[[str], RealCli],
    run_story: Callable[..., Any],
    project: Path,
    tmp_path: Path,
    plans: dict[str, list[Plan]] | None = None,
    env: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
    **overrides: Any,
) -> tuple[StoryState, ModelServer, BmadBrain]:
    binary = real_cli(cli.name).binary
    brain = BmadBrain(project, plans=plans or {})
    with ModelServer(brain, [cli.protocol()]) as server:
        environment = cli.env(tmp_path / "home", server.url, project) | (env or {})
        command = with_env(environment, [str(binary), *cli.flags, *flags])
        final = await run_story(
            project,
            profile=cli.name,
            pricing=cli.pricing,
            command=command,
            settle=30.0,
            **{stage: {"timeout": 180} for stage in STAGES},
            **overrides,
        )
    return final, server, brain


def assert_done(final: StoryState, project: Path) -> None:
    assert final.result == "done", (final.failure_reason, final.recovery_log)
    story_file = find_story_file(BmadPaths.load(project).stories, "1.1")
    assert story_file is not None and read_status(story_file.read_text()) == "Done"


async def test_a_story_to_done_with_usage_as_billed(
    cli: Driver,
    real_cli: Callable[[str], RealCli],
    run_story: Any,
    v4_project: Path,
    tmp_path: Path,
) -> None:
    final, server, _ = await story(cli, real_cli, run_story, v4_project, tmp_path)
    assert_done(final, v4_project)
    assert [(r.stage, r.end, r.turn) for r in final.runs] == [
        (stage, "done", "signal") for stage in STAGES
    ]  # every turn ended by Claude's own Stop hook
    # The first start in a folder the CLI has never seen: its trust screen answered, if any.
    dialogs = [e["dialog"] for e in events(v4_project) if e["event"] == "dialog"]
    assert dialogs[:1] == ([cli.first_dialog] if cli.first_dialog else [])
    # Each stage's task reached the model (the slash command expanded around it).
    tasks = [t.first_user for t in server.main_turns() if t.rounds == 0]
    assert any("Draft story 1.1 now" in t for t in tasks)
    assert any("*review docs/stories/1.1.story.md" in t for t in tasks)
    assert not [e for e in events(v4_project) if e["event"] == "cli-warning"]
    billed = cli.recorded(server.main_usage())
    counted = [r.usage for r in final.runs]
    assert all(u is not None for u in counted)
    total = Usage(
        sum(u.input for u in counted if u),
        sum(u.output for u in counted if u),
        sum(u.cache_read for u in counted if u),
        sum(u.cache_write for u in counted if u),
    )
    assert total == billed  # to the token
    (model,) = {m for u in counted if u for m in u.models}
    if cli.priced is not None:  # the CLI prices its own messages
        expected = cli.priced(server.main_usage())
    else:  # priced by the orchestrator's table
        tokens = ModelTokens(billed.input, billed.output, billed.cache_read, billed.cache_write)
        expected = dollars({model: tokens}, price_table(cli.pricing))
    assert expected is not None and expected > 0
    assert abs(sum(u.usd or 0 for u in counted if u) - expected) < 1e-6


async def test_a_question_is_answered_in_the_same_attempt(
    asking: Driver,
    real_cli: Callable[[str], RealCli],
    run_story: Any,
    v4_project: Path,
    tmp_path: Path,
) -> None:
    final, server, _ = await story(
        asking, real_cli, run_story, v4_project, tmp_path, plans={"sm": [["ask", "work"]]}
    )
    assert_done(final, v4_project)
    sm = final.runs[0]
    assert (sm.stage, sm.attempt, sm.end) == ("sm", 1, "done")
    assert [(n.reason, n.via) for n in sm.nudges] == [("attention", "hook")]
    # The model read the answer: a denied question's reason (Claude, Gemini), or its next
    # message after the dialog was closed (opencode).
    turns = server.main_turns()
    read = [typed_text(t.last_user.strip()) for t in turns] + [
        r for t in turns for r in t.tool_results
    ]
    assert any("Nobody can answer questions" in text for text in read)
    assert not [e for e in events(v4_project) if e["event"] == "deliver"]  # nothing typed


async def test_a_turn_without_output_is_nudged_on_in_the_same_attempt(
    cli: Driver,
    real_cli: Callable[[str], RealCli],
    run_story: Any,
    v4_project: Path,
    tmp_path: Path,
) -> None:
    final, server, _ = await story(
        cli, real_cli, run_story, v4_project, tmp_path, plans={"po": [["idle", "work"]]}
    )
    assert_done(final, v4_project)
    po = next(r for r in final.runs if r.stage == "po")
    assert (po.attempt, po.end, po.turn) == (1, "done", "signal")
    # Through the CLI's hook (or plugin) where it can continue a turn; typed where it cannot.
    via = "hook" if cli.steers else "typed"
    assert [(n.reason, n.via) for n in po.nudges] == [("turn_end", via)]
    assert "report" in po.nudges[0].text
    said = [typed_text(t.last_user.strip()) for t in server.main_turns()]
    # The model got the nudge, whole, as its next input (Claude puts a "Stop hook" label on it).
    assert any(po.nudges[0].text in text for text in said)
    typed = [e for e in events(v4_project) if e["event"] in ("deliver", "send")]
    assert len(typed) == (0 if cli.steers else 1)


async def test_a_long_nudge_is_typed_as_one_line_and_confirmed_by_the_cli(
    cli: Driver,
    real_cli: Callable[[str], RealCli],
    run_story: Any,
    v4_project: Path,
    tmp_path: Path,
) -> None:
    # With hook steering off (the relay answers nothing), the nudge is typed.
    final, server, _ = await story(
        cli,
        real_cli,
        run_story,
        v4_project,
        tmp_path,
        plans={"po": [["idle", "work"]]},
        env={"BMAD_STEER_SECONDS": "0"},
    )
    assert_done(final, v4_project)
    po = next(r for r in final.runs if r.stage == "po")
    assert (po.attempt, po.end) == (1, "done")
    assert [(n.reason, n.via) for n in po.nudges] == [("turn_end", "typed")]
    assert len(po.nudges[0].text) > 150  # would wrap in the input box if typed whole
    (delivered,) = [e for e in events(v4_project) if e["event"] == "deliver"]
    assert delivered["evidence"] == cli.submit_evidence and delivered["typed"] <= 200
    typed = [t.last_user for t in server.main_turns() if "do what it says" in t.last_user]
    assert typed and typed_text(typed[0].strip()) == po.nudges[0].text


async def test_a_crash_mid_stage_is_retried(
    cli: Driver,
    real_cli: Callable[[str], RealCli],
    run_story: Any,
    v4_project: Path,
    tmp_path: Path,
) -> None:
    final, _, _ = await story(
        cli,
        real_cli,
        run_story,
        v4_project,
        tmp_path,
        plans={"dev": [["crash"], ["work"]]},
        flags=cli.crash_flags,
    )
    assert_done(final, v4_project)
    dev = [(r.attempt, r.end) for r in final.runs if r.stage == "dev"]
    assert dev == [(1, "agent_gone"), (2, "done")]
    assert final.recovery_log[0].stage == "dev"
