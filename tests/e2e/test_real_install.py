"""The orchestrator on a real BMad v4.44.3 install, made by BMad's own installer (npx)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import cli, rehearsed, report, simulated_argv, stories


@pytest.fixture
def installed(bmad_v4_install: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(bmad_v4_install, project, symlinks=True)
    return project


def epic(project: Path, socket: str, **overrides: object) -> Path:
    config: dict[str, object] = {
        "project": ".",
        "stories": ["1.1", {"id": "1.2", "depends_on": ["1.1"]}],
        "agent": {"profile": "claude"},
        "tmux": {"socket": socket},
    }
    config.update(overrides)
    path = project / "epic.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_the_install_is_what_the_orchestrator_expects(installed: Path) -> None:
    manifest = yaml.safe_load((installed / ".bmad-core" / "install-manifest.yaml").read_text())
    assert manifest["version"] == "4.44.3"
    for agent in ("sm", "po", "dev", "qa"):
        assert (installed / ".claude" / "commands" / "BMad" / "agents" / f"{agent}.md").is_file()


def test_validate_dry_run_and_status_on_a_real_install(installed: Path, socket: str) -> None:
    refused = cli(
        "validate",
        epic(installed, socket, agent={"profile": "claude", "command": "no-claude-here"}),
    )
    assert refused.returncode == 2 and "'no-claude-here' (sm) is not on PATH" in refused.stderr
    # The claude profile, run by a stand-in: the project is fine, and what would stall is said.
    path = epic(installed, socket, agent={"profile": "claude", "command": simulated_argv()})
    validated = cli("validate", path)
    assert validated.returncode == 0, validated.stderr
    assert "claude (sm) runs with no permission mode" in validated.stderr
    assert "--permission-mode, bypassPermissions" in validated.stderr
    assert "no budget: the run may spend without limit" in validated.stderr
    plan = cli(path, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "story 1.1: starts at sm" in plan.stdout
    assert "/BMad:agents:sm *draft" in plan.stdout
    assert "docs/qa/assessments/1.1-po-validation-" in plan.stdout
    status = cli("status", path, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == [
        {
            "story": story,
            "file": None,
            "status_raw": None,
            "state": None,
            "gate_file": None,
            "gate": None,
            "start": "sm",
            "reason": None,
            "waiting": None,
        }
        for story in ("1.1", "1.2")
    ]


def test_a_simulated_run_on_a_real_install(installed: Path, socket: str) -> None:
    path = epic(installed, socket, stories=["1.1"])
    result = cli(path, "--simulate", "--keep", "--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    assert stories(report(rehearsed(result.stdout)))["1.1"]["result"] == "done"
    # The real core-config names documents this fresh install does not have: warnings only.
    assert "warning: core-config prd.prdShardedLocation: docs/prd does not exist" in result.stderr
    assert "devLoadAlwaysFiles: docs/architecture/coding-standards.md" in result.stderr


@pytest.mark.parametrize("broken", ["no-core-config", "old-version", "missing-commands"])
def test_preflight_refuses_a_project_it_cannot_drive(
    installed: Path, socket: str, broken: str
) -> None:
    overrides: dict[str, object] = {}
    if broken == "no-core-config":
        (installed / ".bmad-core" / "core-config.yaml").unlink()
        expected = "has no .bmad-core/core-config.yaml"
    elif broken == "old-version":
        manifest = installed / ".bmad-core" / "install-manifest.yaml"
        manifest.write_text(manifest.read_text().replace("version: 4.44.3", "version: 4.38.0"))
        expected = "BMad 4.38.0 is installed"
    else:
        (installed / ".claude" / "commands" / "BMad" / "agents" / "qa.md").unlink()
        expected = "the claude agent cannot call up the BMad agents: "
    # The claude profile, run by a stand-in so only the project's problems remain.
    overrides["agent"] = {"profile": "claude", "command": simulated_argv()}
    path = epic(installed, socket, **overrides)
    for predicted in (cli("validate", path), cli(path, "--dry-run")):  # as the run will say
        assert predicted.returncode == 2 and expected in predicted.stderr, predicted.stderr
    result = cli(path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr
    assert "npx bmad-method@4.44.3 install" in result.stderr or broken == "no-core-config"
    assert "Traceback" not in result.stderr
    assert not (installed / ".bmad-orchestrator" / "runs").exists()


def test_the_demo_project_passes_preflight_without_a_warning(demo: Path, socket: str) -> None:
    from tests.helpers import write_epic

    result = cli(write_epic(demo, socket, stories=["1.1"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr


@pytest.mark.parametrize("layout", ["as installed", "bmad-core ignored"])
def test_story_worktrees_of_a_real_install_have_its_commands_and_never_commit_them(
    installed: Path, socket: str, layout: str
) -> None:
    from orchestrator.git import Worktrees
    from orchestrator.methods import get_method
    from orchestrator.stages import STAGES
    from tests.helpers import git, write

    # As installed: .bmad-core/ and .claude/commands/ both untracked. The layout: a
    # .gitignore listing .bmad-core/ under "# BMAD (local only)", .claude/ left untracked.
    write(installed / "README.md", "# a project\n")
    if layout == "bmad-core ignored":
        write(installed / ".gitignore", "# BMAD (local only)\n.bmad-core/\n")
    git(installed, "init", "-q", "-b", "main")
    git(installed, "add", "README.md", *([".gitignore"] if layout != "as installed" else []))
    git(installed, "commit", "-q", "-m", "Initial commit")
    untracked = git(installed, "status", "--porcelain").split("\n")
    assert "?? .claude/" in untracked
    assert ("?? .bmad-core/" in untracked) is (layout == "as installed")
    project = get_method("bmad-v4").open(installed)
    trees = Worktrees(
        installed,
        installed / ".bmad-orchestrator",
        branch="bmad/epic",
        install=project.install_paths(),
    )
    workspace = trees.story("1.1")
    for agent in ("sm", "po", "dev", "qa"):
        assert (workspace.project / ".claude/commands/BMad/agents" / f"{agent}.md").is_file()
    copied = get_method("bmad-v4").open(workspace.project)
    assert (
        copied.preflight(agents=dict.fromkeys(STAGES, "claude"))[0] == []
    )  # the agents find their commands
    trees.cleanup()

    path = epic(installed, socket, stories=["1.1", "1.2"], parallel=2)
    git(installed, "add", "epic.yaml")
    git(installed, "commit", "-q", "-m", "The epic")
    result = cli(path, "--simulate", "--keep", "--plain")
    assert result.returncode == 0, result.stdout + result.stderr
    copy = rehearsed(result.stdout)
    data = report(copy)
    assert data["isolation"] == "worktree"
    assert {s["result"] for s in data["stories"]} == {"done"}
    committed = git(copy, "log", "--name-only", "--format=", "main..bmad/epic").split()
    assert committed and not [p for p in committed if p.startswith((".bmad-core", ".claude"))]
