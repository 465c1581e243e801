"""`init` on real BMad installs (v4.44.3 and v6.10.0, made by BMad's own installer): a first
epic.yaml that `validate` takes without a warning, and never an overwrite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from orchestrator.app.config import load_epic
from tests.e2e.test_bmad_v6 import v6_copy
from tests.helpers import cli, git, git_repo, write

EPIC_ONE = """# Epic 1 Everyday todos

## Story 1.1 Add a todo

As a user, I want to add a todo.

## Story 1.2: List todos

## Story 1.10: Much later
"""


@pytest.fixture
def claude_on_path(tmp_path: Path) -> dict[str, str]:
    """A `claude` that only says its (tested) version: the binary a real machine has."""
    folder = tmp_path / "bin"
    write(folder / "claude", "#!/bin/sh\necho '2.1.197 (Claude Code)'\n")
    (folder / "claude").chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_init_on_a_real_v4_install_writes_an_epic_validate_takes_as_it_is(
    bmad_v4_install: Path, tmp_path: Path, claude_on_path: dict[str, str]
) -> None:
    project = tmp_path / "project"
    shutil.copytree(bmad_v4_install, project, symlinks=True)
    write(project / "docs" / "prd" / "epic-1-everyday-todos.md", EPIC_ONE)
    write(project / "docs" / "stories" / "1.3.story.md", "# Story 1.3: Done already\n")
    git_repo(project)

    done = cli("init", project, env=claude_on_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "bmad-v4, 4 stories, agent claude" in done.stdout
    config = load_epic(project / "epic.yaml")
    assert config.story_ids == ["1.1", "1.2", "1.3", "1.10"]
    assert config.budget is not None and config.run_budget is not None
    assert "bypassPermissions" in (project / "epic.yaml").read_text()
    # The state dir is kept out of git; the new epic.yaml is the only new file.
    assert "/.bmad-orchestrator/" in (project / ".git" / "info" / "exclude").read_text()
    write(project / ".bmad-orchestrator" / "x", "")
    assert git(project, "status", "--porcelain").split() == ["??", "epic.yaml"]
    validated = cli("validate", project / "epic.yaml", env=claude_on_path)
    assert validated.returncode == 0, validated.stderr
    # What init chose raises no warning (the fresh install's missing documents still do).
    for chosen in ("permission mode", "no budget", "tested"):
        assert chosen not in validated.stderr
    again = cli("init", project)
    assert again.returncode == 2 and "init never overwrites it" in again.stderr
    assert yaml.safe_load((project / "epic.yaml").read_text())["stories"][0] == "1.1"


def test_init_on_a_real_v6_install_lists_the_sprint_plan(
    bmad_v6_install: Path, tmp_path: Path, claude_on_path: dict[str, str]
) -> None:
    project = v6_copy(bmad_v6_install, tmp_path, {"stories": ["1.1"]})
    (project / "epic.yaml").unlink()

    done = cli("init", project, env=claude_on_path)

    assert done.returncode == 0, done.stdout + done.stderr
    config = load_epic(project / "epic.yaml")
    assert (config.method, config.story_ids) == ("bmad-v6", ["1.1", "1.2", "1.3", "1.4"])
    validated = cli("validate", project / "epic.yaml", env=claude_on_path)
    assert validated.returncode == 0, validated.stderr
    assert "permission mode" not in validated.stderr and "no budget" not in validated.stderr


def test_init_without_a_bmad_install_says_what_to_do(tmp_path: Path) -> None:
    done = cli("init", tmp_path)
    assert done.returncode == 2
    assert "holds no BMad install" in done.stderr and "npx bmad-method install" in done.stderr
    assert not (tmp_path / "epic.yaml").exists()


def test_init_on_a_build_auto_project_lists_its_stories_yaml(
    bmad_v6_12_install: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(bmad_v6_12_install, project, symlinks=True)
    folder = project / "_bmad-output" / "specs" / "spec-rate-limit"
    write(folder / "stories.yaml", '- id: "1"\n  title: Add rate limiting\n- id: "2"\n  title: M\n')

    done = cli("init", project)

    assert done.returncode == 0, done.stdout + done.stderr
    config = load_epic(project / "epic.yaml")
    assert (config.method, config.story_ids) == ("bmad-v6-build", ["1", "2"])
