"""BMad v6.12.0 as its installer leaves it: build-auto by default (the classic skills only with
`--shims`), and build-auto rendering itself through `uv run`, which halts without uv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.methods import detect_method, get_method
from tests.e2e.test_bmad_v6 import IMPL, v6_copy
from tests.helpers import cli, git_repo, report, simulated_argv, stories, write


def path_without_uv(extra: Path | None = None) -> str:
    """This PATH without any folder holding `uv` (and with `extra` first)."""
    kept = [d for d in os.environ["PATH"].split(os.pathsep) if not Path(d, "uv").exists()]
    return os.pathsep.join([str(extra)] * bool(extra) + kept)


def test_a_default_6_12_install_is_build_auto_and_with_shims_classic(
    bmad_v6_12_install: Path, bmad_v6_12_shims_install: Path
) -> None:
    assert detect_method(bmad_v6_12_install) == "bmad-v6-build"
    described = get_method("bmad-v6-build").open(bmad_v6_12_install).describe()
    assert described[0].startswith("BMad v6 6.12.0 (build)")
    assert detect_method(bmad_v6_12_shims_install) == "bmad-v6"
    assert not (bmad_v6_12_install / ".claude" / "skills" / "bmad-create-story").exists()


def test_build_auto_without_uv_is_refused_before_anything_starts(
    bmad_v6_12_install: Path, tmp_path: Path, socket: str
) -> None:
    epic = {
        "method": "bmad-v6-build",
        "stories": ["1.1"],
        "agent": {"profile": "claude", "command": simulated_argv()},
        "tmux": {"socket": socket},
    }
    project = v6_copy(bmad_v6_12_install, tmp_path, epic)
    path = project / "epic.yaml"
    without = {"PATH": path_without_uv()}
    for argv in (["validate", path], [path, "--dry-run"], [path, "--plain"]):
        refused = cli(*argv, env=without)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "uv is not installed: bmad-build-auto renders itself with `uv run`" in refused.stderr
    uv = write(tmp_path / "bin" / "uv", "#!/bin/sh\nexit 0\n")
    uv.chmod(0o755)
    validated = cli("validate", path, env={"PATH": path_without_uv(uv.parent)})
    assert validated.returncode == 0, validated.stderr


@pytest.mark.parametrize("shims", [False, True], ids=["build-auto", "classic-shims"])
def test_a_simulated_story_runs_to_done_on_6_12(
    bmad_v6_12_install: Path,
    bmad_v6_12_shims_install: Path,
    tmp_path: Path,
    socket: str,
    shims: bool,
) -> None:
    install = bmad_v6_12_shims_install if shims else bmad_v6_12_install
    epic = {
        "method": "bmad-v6" if shims else "bmad-v6-build",
        "stories": ["1.1"],
        "agent": {"profile": "simulated"},
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    project = git_repo(v6_copy(install, tmp_path, epic))
    result = cli(project / "epic.yaml", "--plain", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stories(report(project))["1.1"]["result"] == "done"
    assert (project / IMPL / "sprint-status.yaml").is_file()
