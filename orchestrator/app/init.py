"""`init`: a first epic.yaml for an existing BMad project, from what the project holds.

It reads the method and version, the agent CLIs BMad was installed for (the first whose
commands are there and whose binary is on PATH), and the stories the project names, and writes
a short commented epic.yaml with what a first real run needs and nobody thinks of: a permission
mode that never stalls the CLI, a budget, and the state dir kept out of git. It never
overwrites a file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from orchestrator.agents.clis import CLIS
from orchestrator.defaults import STATE_DIR_NAME
from orchestrator.errors import InputError, ProjectError
from orchestrator.git import Git, find_toplevel
from orchestrator.git.checks import exclude_locally, ignore_pattern
from orchestrator.methods import Project, detect_method, get_method, installed
from orchestrator.stages import StageName

EPIC_FILE = "epic.yaml"
CLI_ORDER = ("claude", "codex", "gemini", "copilot", "opencode")
STORY_BUDGET_USD = 10
RUN_BUDGET_USD = 50


def init_project(folder: Path) -> list[str]:
    """Write `folder/epic.yaml` for the BMad project in `folder`; what was done, line by line."""
    folder = Path(os.path.abspath(folder))
    epic = folder / EPIC_FILE
    if os.path.lexists(epic):
        raise InputError(f"{epic} exists: init never overwrites it (move it away to start over)")
    if not installed(folder):
        raise InputError(
            f"{folder} holds no BMad install: install BMad first (npx bmad-method install), then "
            "run init again"
        )
    method = detect_method(folder)
    try:
        project = get_method(method).open(folder)
    except ProjectError as exc:
        raise InputError(f"{folder}: {exc}") from None
    stages = get_method(method).stages
    cli = _installed_cli(project, stages)
    stories = project.known_stories()
    fd = os.open(epic, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(_epic_text(method, cli, stories))
    said = [
        f"wrote {epic}: {method}, {len(stories)} stories, agent {cli}"
        + ("" if stories else " (no story found: list them under `stories:`)"),
        _ignore_state_dir(folder),
        f"next: bmad-orchestrator validate {EPIC_FILE}; bmad-orchestrator {EPIC_FILE} --simulate "
        f"(a rehearsal on a copy); then bmad-orchestrator {EPIC_FILE}",
    ]
    return [line for line in said if line]


def _installed_cli(project: Project, stages: tuple[StageName, ...]) -> str:
    """The first CLI BMad's commands were installed for and whose binary is on PATH; else the
    first installed for; else Claude Code."""
    installed = []
    for name in CLI_ORDER:
        problems, _ = project.preflight(agents=dict.fromkeys(stages, name))
        if not any("cannot call up" in p or "no known way" in p for p in problems):
            installed.append(name)
    on_path = [name for name in installed if shutil.which(CLIS[name].binary)]
    return (on_path or installed or ["claude"])[0]


def _epic_text(method: str, cli: str, stories: list[str]) -> str:
    spec = CLIS[cli]
    listed = "".join(f"  - {json.dumps(story)}\n" for story in stories) or "  []\n"
    flags = (
        "  # Never asks before an edit or a command (a question nobody answers stalls the\n"
        "  # stage): run it where an agent may run commands (a container, a VM, a clone).\n"
        f"  flags: {json.dumps(list(spec.unattended))}\n"
        if spec.unattended
        else "  # Give it a permission mode that never asks (see its docs): a question stalls.\n"
    )
    return (
        "# Written by `bmad-orchestrator init`. Every key: bmad-orchestrator's docs/epic-yaml.md\n"
        "project: .\n"
        f"method: {method}\n"
        'stories:          # run in this order; `- {id: "1.2", depends_on: ["1.1"]}` and\n'
        "                  # `parallel` run independent ones side by side\n"
        f"{listed}"
        "parallel: 1\n"
        "agent:\n"
        f"  profile: {cli}\n"
        f"{flags}"
        f"budget: {{usd: {STORY_BUDGET_USD}}}      # per story: past it, it stops after its stage\n"
        f"run_budget: {{usd: {RUN_BUDGET_USD}}}  # per run: past it, no new stage starts\n"
    )


def _ignore_state_dir(folder: Path) -> str:
    """Keep the state dir out of git (`info/exclude`); says what it did or what to do."""
    toplevel = find_toplevel(folder)
    if toplevel is None:
        return ""
    git = Git(folder)
    if git.ok("check-ignore", "-q", f"{STATE_DIR_NAME}/"):
        return f"{STATE_DIR_NAME}/ is already ignored by git"
    relative = os.path.relpath(folder / STATE_DIR_NAME, os.path.realpath(toplevel))
    try:
        exclude = exclude_locally(git, relative)
    except OSError as exc:
        return f"add {ignore_pattern(relative)}/ to .gitignore (git's exclude file: {exc})"
    return f"kept {STATE_DIR_NAME}/ out of git ({exclude})"
