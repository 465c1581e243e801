"""Shared fixtures: a real tmux server on a private socket per test, a BMad v4 project, the
demo project, a real BMad install; and the markers each test folder carries.

Every test gets its own `-L` socket and kills only that server; the user's default server is
never touched. Tests under `unit/` need no tmux, under `tmux/` a real tmux server, under `e2e/`
whole CLI runs (marked `slow`: `./dev.sh test -m "not slow"` runs the rest).
"""

from __future__ import annotations

import os
import shutil
import socket as socketlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchestrator.tmux import TmuxAgentManager, TmuxServer, socket_path
from tests.helpers import DEMO

BMAD_V4 = "bmad-method@4.44.3"
BMAD_V6 = {
    "6.10.0": "bmad-method@6.10.0",
    "6.11.0": "bmad-method@6.11.0",
    "6.12.0": "bmad-method@6.12.0",
}
FOLDER_MARKERS = {
    "unit": (),
    "tmux": ("tmux",),
    "e2e": ("tmux", "slow"),
    "realcli": ("tmux", "slow", "realcli"),
}


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Rehearsal copies (`--simulate`) go to a cache of the test session's own, never the user's."""
    folder = tmp_path_factory.mktemp("cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder (`tmux`, `slow`)."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        for marker in FOLDER_MARKERS.get(folder, ()):
            item.add_marker(marker)


def unique_socket() -> str:
    """A socket name no other test (or user) has."""
    return f"bmad-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
    server = TmuxServer(name)
    if server.alive():
        server.kill()
    socket_path(name).unlink(missing_ok=True)


@pytest.fixture
async def manager(project: Path, socket: str) -> AsyncIterator[TmuxAgentManager]:
    """A tmux manager on the test's socket, its sessions and server gone afterwards."""
    mgr = TmuxAgentManager(project, socket=socket, prefix="bmad")
    yield mgr
    await mgr.kill_all()
    mgr.server.kill()
    assert not mgr.server.alive()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the demo project (examples/demo)."""
    project = tmp_path / "demo"
    shutil.copytree(DEMO, project)
    return project


@pytest.fixture(scope="session")
def bmad_v4_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BMad v4.44.3 project made by BMad's own installer from the npm registry, once
    per test session (copy it before changing anything)."""
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


def _install_v6(tmp_path_factory: pytest.TempPathFactory, version: str, *flags: str) -> Path:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: BMad's own installer cannot run here")
    target = tmp_path_factory.mktemp(f"bmad-v{version}{''.join(flags)}") / "project"
    target.mkdir()
    command = [npx, "--yes", BMAD_V6[version], "install", "--directory", str(target)]
    command += ["--modules", "bmm", "--tools", "claude-code", *flags, "--yes"]
    output = ""
    for _ in range(3):  # the registry is the network: a transient failure gets another try
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
        )
        output = result.stdout + result.stderr
        if result.returncode == 0 and (target / "_bmad" / "_config" / "manifest.yaml").exists():
            return target
    pytest.fail(f"the BMad {version} installer failed: {output[-2000:]}")


@pytest.fixture(scope="session")
def bmad_v6_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BMad v6.10.0 project (the last classic-only release) made by BMad's own
    installer, once per test session (copy it before changing anything)."""
    return _install_v6(tmp_path_factory, "6.10.0")


@pytest.fixture(scope="session")
def bmad_v6_11_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BMad v6.11.0 project (build-auto and the classic skills), once per session."""
    return _install_v6(tmp_path_factory, "6.11.0")


@pytest.fixture(scope="session")
def bmad_v6_12_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BMad v6.12.0 project as installed by default: build-auto, no classic shims."""
    return _install_v6(tmp_path_factory, "6.12.0")


@pytest.fixture(scope="session")
def bmad_v6_12_shims_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real BMad v6.12.0 project installed with `--shims`: the classic skills too."""
    return _install_v6(tmp_path_factory, "6.12.0", "--shims")


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private Postgres server (the distribution's binaries) on a free port of 127.0.0.1 and
    a data folder of its own, for the session; its URL carries a password no output may show.
    Postgres refuses to run as root: then it runs as `nobody`."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("Postgres is not installed (Debian: apt-get install postgresql)")
    folder = tmp_path_factory.mktemp("postgres")
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "nobody", "--"]
        os.chmod(folder, 0o755)
        for path in (folder.parent, folder.parent.parent):
            os.chmod(path, os.stat(path).st_mode | 0o005)
        shutil.chown(sockets, "nobody")
        data.mkdir(mode=0o700)
        shutil.chown(data, "nobody")
    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "bmad", "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(data / "log"), "-w",
         "-t", "60", "start"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield f"postgresql://bmad:n0t-this-secret@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
