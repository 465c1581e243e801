"""Shared fixtures: a real tmux server on a private socket per test, and a BMad v4 project.

Every test gets its own `-L` socket and kills only that server; the user's default server is
never touched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchestrator.tmux import TmuxAgentManager
from tests.helpers import DEMO


def unique_socket() -> str:
    return f"bmad-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def socket_path(socket: str) -> Path:
    return Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / socket


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal BMad v4 project with its core-config."""
    root = tmp_path / "project"
    (root / ".bmad-core").mkdir(parents=True)
    (root / ".bmad-core" / "core-config.yaml").write_text(
        "devStoryLocation: docs/stories\nqa:\n  qaLocation: docs/qa\nslashPrefix: BMad\n"
    )
    return root


@pytest.fixture
def socket() -> Iterator[str]:
    """A unique tmux socket name; the server on it (if any) is killed afterwards."""
    name = unique_socket()
    yield name
    import libtmux

    server = libtmux.Server(socket_name=name)
    if server.is_alive():
        server.kill()
    socket_path(name).unlink(missing_ok=True)


@pytest.fixture
async def manager(project: Path, socket: str) -> AsyncIterator[TmuxAgentManager]:
    mgr = TmuxAgentManager(project, socket=socket, prefix="bmad")
    yield mgr
    await mgr.kill_all()
    mgr.server.kill()
    assert not mgr.server.alive()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    return project


BMAD_V4 = "bmad-method@4.44.3"


@pytest.fixture(scope="session")
def bmad_v4_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BMad v4.44.3 project made by BMad's own installer from the npm registry, once
    per test session (copy it before changing anything)."""
    import subprocess

    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: BMad's own installer cannot run here")
    target = tmp_path_factory.mktemp("bmad-v4") / "project"
    target.mkdir()
    command = [npx, "--yes", BMAD_V4, "install", "--full", "--directory", str(target)]
    command += ["--ide", "claude-code"]
    output = ""
    for _ in range(3):  # the registry is the network: a transient failure gets another try
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
        )
        output = result.stdout + result.stderr
        if result.returncode == 0 and (target / ".bmad-core" / "install-manifest.yaml").exists():
            return target
    pytest.fail(f"the BMad installer failed: {output[-2000:]}")
