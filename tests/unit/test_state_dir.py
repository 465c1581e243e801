"""The state dir as a hostile repository or user could leave it: links, other owners."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.app.config import load_epic
from orchestrator.errors import StateDirError
from orchestrator.files import StateDir
from tests.helpers import write_epic


def test_a_state_dir_that_is_a_link_or_not_ours_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(StateDirError, match="symbolic link"):
        StateDir(link).prepare()
    if os.geteuid() == 0:  # root owns "/": give a folder to someone else instead
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        os.chown(other, 1234, 1234)
    else:
        other = Path("/")
    with pytest.raises(StateDirError, match="not to you"):
        StateDir(other).prepare()


def test_config_paths_stay_unresolved_so_links_are_seen(demo: Path, socket: str) -> None:
    real = demo.parent / "elsewhere"
    real.mkdir(mode=0o700)
    (demo / "state-link").symlink_to(real)
    config = load_epic(write_epic(demo, socket, state_dir="state-link"))
    assert config.state_dir == demo / "state-link"
    with pytest.raises(StateDirError):
        StateDir(config.state_dir).prepare()


def test_state_dir_audit_only_looks_at_the_orchestrators_own_entries(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir(mode=0o700)
    (root / "node_modules").mkdir()
    (root / "node_modules" / "link").symlink_to(tmp_path)  # not ours to judge
    StateDir(root).audit()
    (root / "logs").mkdir(mode=0o700)
    (root / "logs" / "x.log").symlink_to(tmp_path / "x")
    with pytest.raises(StateDirError, match="symbolic link"):
        StateDir(root).audit()
