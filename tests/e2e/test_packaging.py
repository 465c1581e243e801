"""The program as a user installs it: a wheel built from the repository, in a fresh venv outside
it, run from a folder with no checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_bmad_v6 import v6_copy
from tests.helpers import DEMO, REPO

GENERIC = ("state", "nodes", "graphs")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel (and its dependencies from the package registry)."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if built.returncode != 0:
        pytest.fail(f"building the wheel failed: {built.stderr[-2000:]}")
    (wheel,) = wheels.glob("bmad_orchestrator-*.whl")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        if "Could not find a version" in done.stderr or "Failed to establish" in done.stderr:
            pytest.skip(f"no package registry to install the dependencies from: {done.stderr}")
        pytest.fail(f"installing the wheel failed: {done.stderr[-2000:]}")
    return env_dir


def run(
    env_dir: Path, cwd: Path, *argv: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A command of the installed venv, from `cwd`, with nothing of the repository on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_wheel_is_the_whole_program_in_one_namespace(installed: Path, tmp_path: Path) -> None:
    site = next((installed / "lib").glob("python3.*/site-packages"))
    assert (site / "orchestrator" / "state" / "story.py").is_file()
    assert (site / "orchestrator" / "methods" / "bmad_v4").is_dir()
    assert [name for name in GENERIC if (site / name).exists()] == []
    for argv in (["bmad-orchestrator", "--help"], ["python", "-m", "orchestrator", "--help"]):
        done = run(installed, tmp_path, *argv)
        assert done.returncode == 0 and "epic" in done.stdout, done.stderr
    embedding = tmp_path / "embed.py"
    embedding.write_text(
        textwrap.dedent(
            """
            from langgraph.graph import StateGraph
            from orchestrator.graphs.story import build_story_graph, graph
            from orchestrator.state import StoryInput

            print(type(graph).__name__, sorted(build_story_graph().nodes)[:2])
            print(StoryInput(story_id="1.1").story_id)
            """
        )
    )
    done = run(installed, tmp_path, "python", str(embedding))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1.1"


def test_the_installed_program_runs_an_epic_from_a_folder_without_a_checkout(
    installed: Path, tmp_path: Path, socket: str
) -> None:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    config = yaml.safe_load((project / "epic.yaml").read_text())
    config.update(stories=["1.1"], tmux={"socket": socket}, agent={"profile": "simulated"})
    (project / "epic.yaml").write_text(yaml.safe_dump(config))
    assert run(installed, project, "bmad-orchestrator", "validate", "epic.yaml").returncode == 0
    done = run(installed, project, "bmad-orchestrator", "epic.yaml", "--plain", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1.1: done" in done.stdout


def test_the_installed_program_inits_validates_and_rehearses_a_real_install(
    installed: Path, tmp_path: Path, bmad_v4_install: Path, socket: str
) -> None:
    project = tmp_path / "project"
    shutil.copytree(bmad_v4_install, project, symlinks=True)
    (project / "docs" / "prd").mkdir(parents=True)
    (project / "docs" / "prd" / "epic-1-todos.md").write_text("## Story 1.1: Add a todo\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\necho '2.1.197 (Claude Code)'\n")
    (bin_dir / "claude").chmod(0o755)
    env_path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    os.environ["PATH"], before = env_path, os.environ["PATH"]
    try:
        done = run(installed, project, "bmad-orchestrator", "init")
        assert done.returncode == 0 and "1 stories, agent claude" in done.stdout, done.stderr
        config = yaml.safe_load((project / "epic.yaml").read_text())
        (project / "epic.yaml").write_text(yaml.safe_dump({**config, "tmux": {"socket": socket}}))
        assert run(installed, project, "bmad-orchestrator", "validate", "epic.yaml").returncode == 0
        files = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
        rehearsal = run(
            installed, project, "bmad-orchestrator", "epic.yaml", "--simulate", "--plain",
            timeout=300,
        )  # fmt: skip
        assert rehearsal.returncode == 0, rehearsal.stdout + rehearsal.stderr
        assert "1.1: done" in rehearsal.stdout
        assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == files
    finally:
        os.environ["PATH"] = before


def test_the_installed_program_inits_a_real_v6_12_install(
    installed: Path, tmp_path: Path, bmad_v6_12_install: Path
) -> None:
    project = v6_copy(bmad_v6_12_install, tmp_path, {"stories": ["1.1"]})  # sprint-planned
    (project / "epic.yaml").unlink()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, said in (("claude", "2.1.197 (Claude Code)"), ("uv", "uv 0.9.0")):
        (bin_dir / name).write_text(f"#!/bin/sh\necho '{said}'\n")
        (bin_dir / name).chmod(0o755)
    before = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{before}"
    try:
        done = run(installed, project, "bmad-orchestrator", "init")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "bmad-v6-build, 4 stories, agent claude" in done.stdout
        validated = run(installed, project, "bmad-orchestrator", "validate", "epic.yaml")
        assert validated.returncode == 0, validated.stderr
    finally:
        os.environ["PATH"] = before
