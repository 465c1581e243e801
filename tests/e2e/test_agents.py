"""Epics on the other agent CLIs and on money: stand-ins for each CLI, usage in the report,
story and run budgets (the CLI, real tmux, the simulated agent passing for each CLI)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    cli,
    recorded_prompts,
    report,
    runs,
    simulated_argv,
    stories,
    write,
    write_epic,
)

# Per attempt: 100k fresh input and 10k output on claude-sonnet-4-5: $0.30 + $0.15 = $0.45.
USAGE = "100000:10000:0:0"
ATTEMPT_USD = 0.45


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A HOME of the run's own, where every CLI stand-in keeps its records."""
    folder = tmp_path / "home"
    folder.mkdir()
    return {"HOME": str(folder), "CLAUDE_CONFIG_DIR": "", "CODEX_HOME": "", "COPILOT_HOME": ""}


def installed_for_every_cli(project: Path) -> None:
    """What `npx bmad-method install` leaves for each CLI to call up the four agents."""
    for agent in ("sm", "po", "dev", "qa"):
        write(project / ".claude" / "commands" / "BMad" / "agents" / f"{agent}.md", f"# {agent}\n")
        write(
            project / ".gemini" / "commands" / "BMad" / "agents" / f"{agent}.toml", "prompt = ''\n"
        )
        write(project / ".bmad-core" / "agents" / f"{agent}.md", f"# {agent}\n")
    write(project / "AGENTS.md", "".join(f"### {a} (id: {a})\n" for a in ("sm", "po", "dev", "qa")))
    write(
        project / "opencode.jsonc",
        '{\n  // BMad\n  "agent": {"bmad-sm": {}, "bmad-po": {}, "bmad-dev": {}, "bmad-qa": {},},'
        "\n}\n",
    )


def stand_in(cli_name: str, project: Path, *flags: str) -> dict[str, Any]:
    command = simulated_argv(
        "--like", cli_name, "--record", str(project.parent / "prompts.jsonl"), *flags
    )
    return {"profile": cli_name, "command": command}


async def test_a_mixed_cli_epic_runs_to_done_with_usage_per_attempt_story_and_run(
    demo: Path, socket: str, home: dict[str, str]
) -> None:
    installed_for_every_cli(demo)
    qa = "opencode" if shutil.which("node") else "copilot"
    stages = {
        "sm": {"agent": stand_in("claude", demo, "--usage", USAGE)},
        "po": {"agent": stand_in("codex", demo, "--usage", "50000:2000:10000:0")},
        "dev": {"agent": stand_in("gemini", demo, "--usage", "80000:9000:20000:0")},
        "qa": {"agent": stand_in(qa, demo, "--usage", "30000:3000:0:0:claude-sonnet-4-5")},
    }
    epic = write_epic(demo, socket, stories=["1.1"], stages=stages)

    result = cli(epic, "--plain", env=home)

    assert result.returncode == 0, result.stdout + result.stderr
    data = report(demo)
    story = stories(data)["1.1"]
    assert story["result"] == "done"
    assert [(r["stage"], r["agent"]) for r in story["runs"]] == [
        ("sm", "claude"),
        ("po", "codex"),
        ("dev", "gemini"),
        ("qa", qa),
    ]
    assert all(r["usage"] is not None for r in story["runs"])
    assert story["runs"][0]["usage"]["usd"] == pytest.approx(ATTEMPT_USD)
    assert story["runs"][1]["usage"]["cache_read"] == 10000  # codex: cached input split out
    assert story["usage"]["unknown"] == 0 and story["usage"]["attempts"] == 4
    assert story["usage"]["input"] == 100000 + 50000 + 80000 + 30000
    assert data["usage"]["usd"] == pytest.approx(story["usage"]["usd"])
    heads = [prompt.splitlines()[0] for prompt in recorded_prompts(demo.parent)]
    assert heads[0].startswith("/BMad:agents:sm *draft")
    assert heads[1].startswith("As po (the BMad Product Owner agent")
    assert heads[2].startswith("/BMad:agents:dev *develop-story")
    assert heads[3].startswith("*review" if qa == "opencode" else "Read .bmad-core/agents/qa.md")
    assert " tok $" in result.stdout  # the summary shows what the story cost


async def test_a_story_over_its_budget_stops_after_its_stage_and_resumes_once_raised(
    demo: Path, socket: str, home: dict[str, str]
) -> None:
    installed_for_every_cli(demo)
    agent = stand_in("claude", demo, "--usage", USAGE)
    epic = write_epic(demo, socket, stories=["1.1"], agent=agent, budget={"usd": 1.0})

    stopped = cli(epic, "--plain", env=home)

    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    story = stories(report(demo))["1.1"]
    assert story["result"] == "over_budget"
    assert story["reason"].startswith("story budget reached: $1.35 spent of a budget of $1.00")
    assert "--resume --accept-changes" in story["reason"]
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1}  # Dev finished; QA never started

    write_epic(demo, socket, stories=["1.1"], agent=agent, budget={"usd": 5.0})
    resumed = cli(epic, "--resume", "--accept-changes", "--plain", env=home)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    story = stories(report(demo))["1.1"]
    assert story["result"] == "done"
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}  # nothing ran twice
    assert story["usage"]["usd"] == pytest.approx(4 * ATTEMPT_USD)


async def test_a_run_over_its_budget_starts_no_new_stage(
    demo: Path, socket: str, home: dict[str, str]
) -> None:
    installed_for_every_cli(demo)
    agent = stand_in("claude", demo, "--usage", USAGE)
    epic = write_epic(
        demo, socket, stories=["1.1", "1.3"], parallel=1, agent=agent, run_budget={"usd": 1.0}
    )

    result = cli(epic, "--plain", env=home)

    assert result.returncode == 1, result.stdout + result.stderr
    data = report(demo)
    first, second = stories(data)["1.1"], stories(data)["1.3"]
    assert first["result"] == second["result"] == "over_budget"
    assert [r["stage"] for r in first["runs"]] == ["sm", "po", "dev"]
    assert second["runs"] == []  # its first stage never started
    assert second["reason"].startswith("run budget reached: $1.35 spent of a budget of $1.00")
    assert data["usage"]["usd"] == pytest.approx(3 * ATTEMPT_USD)


async def test_usage_that_cannot_be_read_is_unknown_in_the_report_not_zero(
    demo: Path, socket: str, home: dict[str, str]
) -> None:
    installed_for_every_cli(demo)
    epic = write_epic(demo, socket, stories=["1.1"], agent=stand_in("claude", demo))

    result = cli(epic, "--plain", env=home)

    assert result.returncode == 0, result.stdout + result.stderr
    story = stories(report(demo))["1.1"]
    assert [r["usage"] for r in story["runs"]] == [None, None, None, None]
    assert story["usage"]["unknown"] == 4 and story["usage"]["usd"] == 0
    assert "1.1: done" in result.stdout and "unknown" in result.stdout
