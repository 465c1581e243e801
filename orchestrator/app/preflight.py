"""What must hold before a run starts anything: tmux, the agent binaries, the project itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from orchestrator.agents.clis import CLIS
from orchestrator.app.config import EpicConfig
from orchestrator.errors import InputError, ProjectError
from orchestrator.methods import get_method
from orchestrator.stages import StageName

VERSION_TIMEOUT = 20.0  # seconds for `<cli> --version` (Node CLIs start slowly on a busy box)


def preflight(config: EpicConfig, simulate: bool) -> tuple[list[str], list[str]]:
    """(problems that must stop the run before anything starts, warnings to show)."""
    problems: list[str] = []
    if shutil.which("tmux") is None:
        problems.append(
            "tmux is not installed or not on PATH (Debian/Ubuntu: apt-get install tmux)"
        )
    context = config.story_context("preflight", simulate=simulate)
    agents: dict[StageName, str] = {}
    commands: set[tuple[str, str]] = set()
    stalls: dict[str, tuple[str, str]] = {}  # CLI -> (a stage, the flags that keep it going)
    for stage in get_method(config.method).stages:
        try:
            profile = context.profile(stage)
        except InputError as exc:
            problems.append(f"stages.{stage}.agent: {exc}")
            continue
        binary = profile.command[0]
        present = shutil.which(binary) is not None or Path(binary).is_file()
        if not present:
            problems.append(f"agent command {binary!r} ({stage}) is not on PATH")
        agents[stage] = profile.name
        if profile.name in CLIS:
            if present:
                commands.add((profile.name, binary))  # its version is asked
            spec = CLIS[profile.name]
            if spec.asks_permission(profile.command):
                stalls.setdefault(profile.name, (stage, " ".join(spec.unattended)))
    if config.executor == "temporal" and config.checkpointer_url() is None:
        problems.append(
            "executor: temporal needs a checkpointer every host shares: set `checkpointer:` to "
            "a postgresql:// URL (or $VARIABLE holding one)"
        )
    warnings: list[str] = [
        *filter(None, (cli_version_warning(command) for command in sorted(commands)))
    ]
    for name, (asked_in, flags) in stalls.items():
        warnings.append(
            f"{name} ({asked_in}) runs with no permission mode: its first question about an edit "
            f"or a command stalls the stage; add `flags: [{', '.join(flags.split())}]` to the "
            "agent (it then never asks: run it where an agent may run commands)"
        )
    spends = any(name != "simulated" for name in agents.values())  # the simulated agent is free
    if spends and config.budget is None and config.run_budget is None:
        warnings.append(
            "no budget: the run may spend without limit; set `budget: {usd: N}` (per story) "
            "or `run_budget: {usd: N}`"
        )
    try:
        project = get_method(config.method).open(config.project)
        found, said = project.preflight(agents=agents)
        problems += found
        warnings += said
    except ProjectError as exc:
        problems.append(str(exc))
    return list(dict.fromkeys(problems)), warnings


def cli_version_warning(command: tuple[str, str]) -> str | None:
    """A warning when the agent CLI's installed version is outside the tested range."""
    name, binary = command
    try:
        done = subprocess.run(
            [binary, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return f"{name}: `{binary} --version` did not answer; its version is unknown"
    return CLIS[name].untested(done.stdout or done.stderr)
