"""Fixtures for the real-CLI tests: the pinned npm builds (installed once per test session), a
private HOME per test, a copy of a real BMad v4.44.3 install, and a story run on a private tmux
socket whose sessions are all gone afterwards."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents.prices import ModelPrice
from orchestrator.graphs.story import build_story_graph
from orchestrator.state import StoryPolicy, StoryState
from orchestrator.state.context import StoryContext
from orchestrator.tmux import TmuxAgentManager
from tests.helpers import story_context
from tests.realcli.clis import RealCli, install

_installed: dict[str, RealCli | str] = {}


@pytest.fixture(scope="session")
def npm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pinned CLIs are installed for this test session."""
    return tmp_path_factory.mktemp("real-clis")


@pytest.fixture
def real_cli(npm_folder: Path) -> Callable[[str], RealCli]:
    """`real_cli("claude")`: the pinned build, installed on first use (skipped without npm)."""

    def get(name: str) -> RealCli:
        if name not in _installed:
            try:
                _installed[name] = install(name, npm_folder)
            except FileNotFoundError:
                _installed[name] = "npm is not installed: the real CLIs cannot be installed"
            except RuntimeError as exc:
                _installed[name] = f"the npm registry did not serve {name}: {exc}"
        found = _installed[name]
        if isinstance(found, str):
            pytest.skip(found)
        return found

    return get


@pytest.fixture
def v4_project(bmad_v4_install: Path, tmp_path: Path) -> Path:
    """A copy of the real v4.44.3 install, with a PRD epic to draft from."""
    project = tmp_path / "project"
    shutil.copytree(bmad_v4_install, project, symlinks=True)
    (project / "docs" / "prd").mkdir(parents=True, exist_ok=True)
    (project / "docs" / "prd" / "epic-1-greeting.md").write_text(
        "# Epic 1 Greeting\n\n## Story 1.1 Greet the user\n\nAcceptance Criteria\n"
        "1: The program prints a greeting.\n"
    )
    return project


@pytest.fixture
async def run_story(socket: str) -> AsyncIterator[Callable[..., Any]]:
    """Run story 1.1 of `project` through the story graph with `command` as the agent."""
    contexts: list[StoryContext] = []

    async def run(
        project: Path, *, profile: str, command: list[str], policy: StoryPolicy | None = None,
        pricing: dict[str, ModelPrice] | None = None, **overrides: Any,
    ) -> StoryState:  # fmt: skip
        context = story_context(project, socket, profile=profile, command=command, **overrides)
        context = context.model_copy(update={"pricing": pricing or {}})
        contexts.append(context)
        graph = build_story_graph().compile()
        output = await graph.ainvoke(
            {"story_id": "1.1", "policy": policy or StoryPolicy()}, context=context, version="v2"
        )
        assert await context.manager().list_sessions() == []  # nothing left behind
        return output.value

    yield run
    for context in contexts:
        manager: TmuxAgentManager = context.manager()
        await manager.kill_all()
        manager.server.kill()
