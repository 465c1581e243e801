"""What must hold before a run starts anything: tmux, the agent binaries, the project itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.app.config import EpicConfig
from orchestrator.errors import InputError, ProjectError
from orchestrator.methods import get_method
from orchestrator.stages import StageName


def preflight(config: EpicConfig, simulate: bool) -> tuple[list[str], list[str]]:
    """(problems that must stop the run before anything starts, warnings to show)."""
    problems: list[str] = []
    if shutil.which("tmux") is None:
        problems.append(
            "tmux is not installed or not on PATH (Debian/Ubuntu: apt-get install tmux)"
        )
    context = config.story_context("preflight", simulate=simulate)
    agents: dict[StageName, str] = {}
    for stage in get_method(config.method).stages:
        try:
            profile = context.profile(stage)
        except InputError as exc:
            problems.append(f"stages.{stage}.agent: {exc}")
            continue
        binary = profile.command[0]
        if shutil.which(binary) is None and not Path(binary).is_file():
            problems.append(f"agent command {binary!r} ({stage}) is not on PATH")
        agents[stage] = profile.name
    if config.executor == "temporal" and config.checkpointer_url() is None:
        problems.append(
            "executor: temporal needs a checkpointer every host shares: set `checkpointer:` to "
            "a postgresql:// URL (or $VARIABLE holding one)"
        )
    warnings: list[str] = []
    try:
        project = get_method(config.method).open(config.project)
        found, warnings = project.preflight(agents=agents)
        problems += found
    except ProjectError as exc:
        problems.append(str(exc))
    return list(dict.fromkeys(problems)), warnings
