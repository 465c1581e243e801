"""Each agent CLI's profile against a stand-in that behaves like it (the simulated agent with
`--like CLI`): its argv, its screens, its turn-end and question signals through the CLI's own
hook or notify mechanism, and its usage read from where and as the CLI records it."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents.clis import copilot
from orchestrator.agents.clis.base import LaunchSpec
from orchestrator.agents.prices import DEFAULT_PRICES, dollars
from orchestrator.agents.usage import ModelTokens
from orchestrator.nodes import accounting
from orchestrator.nodes.stage import run_stage
from orchestrator.stages import STAGES
from orchestrator.state import AttemptRecord, StoryState
from orchestrator.state.context import StoryContext
from tests.helpers import recorded_prompts, simulated_argv, story_context

USAGE = "1000:200:5000:300"
DATA_VARIABLES = ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "COPILOT_HOME")
HEADS = {
    "claude": "/BMad:agents:sm *draft",
    "codex": "As sm (the BMad Scrum Master agent, .bmad-core/agents/sm.md), run *draft",
    "gemini": "/BMad:agents:sm *draft",
    "copilot": "Read .bmad-core/agents/sm.md and become that BMad Scrum Master agent",
    "opencode": "*draft",
}
needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="opencode's plugins are ES modules: node runs them"
)
CLIS = [
    "claude",
    "codex",
    "gemini",
    "copilot",
    pytest.param("opencode", marks=needs_node),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own: every CLI's records land there (the tmux server, started after
    this, hands it to the sessions)."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    for variable in DATA_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return folder


@pytest.fixture
async def stage(project: Path, socket: str, home: Path) -> AsyncIterator[Any]:
    """Run one SM stage with the stand-in for `cli`: -> (update, record)."""
    contexts: list[StoryContext] = []

    async def run(
        cli: str, *flags: str, timeout: float = 60
    ) -> tuple[dict[str, Any], AttemptRecord]:
        command = simulated_argv("--like", cli, "--record", str(project / "prompts.jsonl"), *flags)
        context = story_context(
            project,
            socket,
            profile=cli,
            command=command,
            settle=30.0,
            record=False,
            **{name: {"timeout": timeout} for name in STAGES},
        )
        contexts.append(context)
        update = await run_stage("sm", StoryState(story_id="1.1"), context)
        (record,) = update["runs"]
        assert await context.manager().list_sessions() == []
        return update, record

    yield run
    for context in contexts:
        manager = context.manager()
        await manager.kill_all()
        manager.server.kill()


def argv(project: Path) -> list[str]:
    """The argv the stand-in was started with (as its CLI would have been)."""
    line = (project / "prompts.jsonl").read_text().splitlines()[0]
    value: list[str] = json.loads(line)["argv"]
    return value


@pytest.mark.parametrize("cli", CLIS)
async def test_each_cli_gets_its_prompt_and_ends_its_turn_through_its_own_mechanism(
    stage: Any, project: Path, cli: str
) -> None:
    _, record = await stage(cli, "--usage", USAGE, "--trust-dialog")
    if cli == "gemini":
        # The project is under /tmp: Gemini would skip a settings file there, and a HOME under
        # /tmp gives no other place. Said on the attempt, never a silent fall back to quiet.
        assert (record.end, record.outcome, record.turn) == ("done", "drafted", "quiet")
        (warning,) = record.warnings
        assert "owned by root" in warning and str(project) in warning
    else:
        assert (record.end, record.outcome, record.turn) == ("done", "drafted", "signal")
        assert record.warnings == []
    assert record.agent == cli
    (prompt,) = recorded_prompts(project)
    assert prompt.startswith(HEADS[cli])
    args = argv(project)
    assert args[-1] == prompt
    if cli == "claude":
        settings = project / ".bmad-orchestrator" / "run" / "bmad-sm-1-1.settings.json"
        assert args[-5:-2] == ["--settings", str(settings), "--session-id"]
        uuid.UUID(args[-2])
    elif cli == "codex":
        overrides = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-c"]
        assert overrides[0].startswith('notify=["/bin/sh", "-c", ')
        assert overrides[1] == f'projects={{{json.dumps(str(project))}={{trust_level="trusted"}}}}'
        assert overrides[2] == "features.daemon_auto_start=false"
        assert not any(arg.startswith("hooks.") for arg in args)  # hook trust is the user's
    elif cli in ("gemini", "copilot"):
        assert (args[-4], args[-2]) == ("--session-id", "-i")
        uuid.UUID(args[-3])
    else:
        assert args[-4:-1] == ["--agent", "sm", "--prompt"]


@pytest.mark.parametrize("cli", CLIS)
async def test_each_clis_usage_is_read_from_its_own_records(
    stage: Any, cli: str, home: Path
) -> None:
    _, record = await stage(cli, "--usage", USAGE)
    usage = record.usage
    assert usage is not None, f"{cli}: usage not found"
    assert (usage.input, usage.output, usage.cache_read) == (1000, 200, 5000)
    assert usage.cache_write == (0 if cli in ("codex", "gemini") else 300)
    # Where the CLI keeps it (opencode keeps none on disk: our plugin records it beside us).
    assert str(home) in usage.source or (cli == "opencode" and "bmad-orchestrator" in usage.source)
    if cli == "opencode":  # opencode prices its own messages
        assert usage.usd == round((1000 * 3 + 200 * 15) / 1_000_000, 6)
    elif cli in ("claude", "codex"):
        model = {"claude": "claude-sonnet-4-5-20250929", "codex": "gpt-5-codex"}[cli]
        tokens = ModelTokens(1000, 200, 5000, usage.cache_write)
        assert usage.models == [model]
        assert usage.usd == pytest.approx(dollars({model: tokens}, DEFAULT_PRICES))
    else:  # priced from the table: gemini-2.5-pro is in it; Copilot's model too
        assert usage.usd is not None and usage.usd > 0


@pytest.mark.parametrize("cli", ["claude", "codex"])
async def test_without_records_usage_is_unknown_not_zero(stage: Any, cli: str) -> None:
    _, record = await stage(cli)  # the stand-in records no usage without --usage
    assert record.end == "done" and record.usage is None


# Gemini's questions: tests/realcli (the stand-in's hooks cannot run from a project under /tmp).
@pytest.mark.parametrize("cli", ["claude", "copilot", pytest.param("opencode", marks=needs_node)])
async def test_a_question_reaches_the_attention_file_and_is_nudged(stage: Any, cli: str) -> None:
    _, record = await stage(cli, "--misbehave", "ask")
    assert (record.end, record.outcome) == ("done", "drafted"), record.detail
    assert [n.reason for n in record.nudges] == ["attention"]


async def test_codex_questions_reach_the_orchestrator_only_with_hook_trust_bypassed(
    stage: Any, project: Path
) -> None:
    _, record = await stage("codex", "--misbehave", "ask", "--dangerously-bypass-hook-trust")
    assert [n.reason for n in record.nudges] == ["attention"]
    assert any(arg.startswith("hooks.PermissionRequest=") for arg in argv(project))


async def test_without_hook_trust_a_codex_question_fails_loudly_not_silently(
    stage: Any, project: Path
) -> None:
    _, record = await stage("codex", "--misbehave", "ask", timeout=4)
    assert record.end == "timeout" and record.outcome is None
    assert any("accept the risk" in line for line in record_screen(project))


def record_screen(project: Path) -> list[str]:
    """The last screen the orchestrator saved for the SM session."""
    screen = next((project / ".bmad-orchestrator" / "logs").rglob("*.screen.txt"))
    return screen.read_text().splitlines()


async def test_copilot_hooks_live_in_the_repository_only_while_the_session_runs(
    stage: Any, project: Path
) -> None:
    (project / ".git").mkdir()  # the project is a repository's root
    _, record = await stage("copilot")
    assert record.turn == "signal"
    turn_end = json.loads((project / ".bmad-orchestrator" / "run" / "bmad-sm-1-1.turn").read_text())
    assert turn_end["transcriptPath"]  # the subagent's stop (no transcript) did not count
    assert not (project / ".github").exists()  # removed with the session, folders too


async def test_a_file_of_the_repository_where_a_hook_file_goes_is_never_touched(
    stage: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copilot's hook file is named by the session's fresh id; should a repository hold that name
    anyway, the attempt fails saying so and the repository's file stays (it was once removed
    with the session's own files)."""
    (project / ".git").mkdir()
    theirs = project / ".github" / "hooks" / "theirs.json"
    theirs.parent.mkdir(parents=True)
    theirs.write_text('{"tracked": true}\n')
    monkeypatch.setattr(copilot, "hook_file", lambda spec: theirs)
    _, record = await stage("copilot")
    assert record.end == "error" and "already exists and is not ours" in record.detail
    assert theirs.read_text() == '{"tracked": true}\n'


def test_copilots_hook_file_is_named_by_the_sessions_own_id(project: Path) -> None:
    (project / ".git").mkdir()
    sid = str(uuid.uuid4())
    spec = LaunchSpec(name="bmad-sm-1-1", run_dir=project, cwd=project, session_id=sid)
    hooks = project / ".github" / "hooks"
    assert copilot.hook_file(spec) == hooks / f"bmad-orchestrator-{sid}.json"


async def test_usage_records_that_never_come_back_are_unknown_and_hold_nothing_up(
    stage: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transcript on a mount that hangs: the attempt ends at once with its usage unknown."""
    hung = threading.Event()
    monkeypatch.setattr(accounting, "USAGE_DEADLINE", 0.5)
    monkeypatch.setattr(accounting, "read_usage", lambda *args: hung.wait())
    try:
        _, record = await stage("claude", "--usage", USAGE)
    finally:
        hung.set()
    assert (record.end, record.outcome, record.usage) == ("done", "drafted", None)
