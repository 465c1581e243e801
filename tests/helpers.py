"""Helpers shared by tests (fixtures live in conftest.py): one of each, used everywhere."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from orchestrator.agents.profiles import make_profile, simulated_command
from orchestrator.agents.simulated import read_runs
from orchestrator.agents.steering import pointed_text
from orchestrator.defaults import STATE_DIR_NAME
from orchestrator.eventlog import EventLog
from orchestrator.files import StateDir
from orchestrator.stages import STAGES
from orchestrator.state import AgentSettings, StageSettings, StoryContext
from orchestrator.tmux import TmuxAgentManager
from orchestrator.watch import wait_for_output

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo"


def simulated_argv(*args: str) -> list[str]:
    """The simulated agent's command line, run by this interpreter."""
    return list(simulated_command(args))


def write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    """Write `text` to `path` (folders made), with a fixed mtime when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def story_context(
    project: Path,
    socket: str,
    *sim_args: str,
    profile: str = "simulated",
    command: list[str] | None = None,
    settle: float | None = None,
    nudges: int | None = None,
    record: bool = True,
    **stages: dict[str, Any],
) -> StoryContext:
    """A story graph context on a private socket: the simulated agent (recording its prompts in
    `{project}/prompts.jsonl`) unless `command` says otherwise; stages get 60 s and no stall
    timer unless `stages` (per stage name) say otherwise."""
    recorded = ["--record", str(project / "prompts.jsonl")] if record else []
    agent: dict[str, Any] = {
        "profile": profile,
        "command": command or simulated_argv(*recorded, *sim_args),
    }
    if settle is not None:
        agent["settle"] = settle
    if nudges is not None:
        agent["nudges"] = nudges
    return StoryContext(
        project=project,
        socket=socket,
        agent=AgentSettings(**agent),
        stages={
            stage: StageSettings(**{"timeout": 60, "stall_timeout": None, **stages.get(stage, {})})
            for stage in STAGES
        },
    )


def recorded_prompts(project: Path, containing: str = "") -> list[str]:
    """The prompts the simulated agent received (with `--record`), oldest first."""
    lines = (project / "prompts.jsonl").read_text().splitlines()
    return [p for p in (json.loads(line)["prompt"] for line in lines) if containing in p]


def runs(project: Path) -> dict[str, dict[str, int]]:
    """How often each stage of each story started, as the simulated agent counted."""
    return read_runs(project / STATE_DIR_NAME)


def events(project: Path) -> list[dict[str, Any]]:
    """The project's event log."""
    return EventLog(StateDir(project / STATE_DIR_NAME)).read()


def spawn_orphan(project: str, socket: str, prefix: str, stage: str, story: str) -> str:
    """A session whose orchestrator is gone: spawned by a process that has exited."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from orchestrator.agents.profiles import make_profile\n"
        "from orchestrator.tmux import TmuxAgentManager\n"
        "m = TmuxAgentManager(Path(sys.argv[1]), socket=sys.argv[2], prefix=sys.argv[3])\n"
        "s = asyncio.run(m.spawn(sys.argv[4], sys.argv[5],"
        " profile=make_profile('generic', ['sleep', '60'])))\n"
        "print(s.name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, project, socket, prefix, stage, story],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def write_epic(folder: Path, socket: str, **overrides: Any) -> Path:
    """The demo epic on the test's socket, without the demo's work delay."""
    config = yaml.safe_load((DEMO / "epic.yaml").read_text())
    config["tmux"] = {"socket": socket, "session_prefix": "bmad"}
    config["agent"] = {"profile": "simulated", "flags": ["--qa-fail", "1.2=1"]}
    config.update(overrides)
    path = folder / "epic.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cli(
    *args: str | Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator ARGS`, run to its end (`env`: added to this environment)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )


def rehearsed(out: str) -> Path:
    """The project's copy a rehearsal (`--simulate`) ran in, as its first line says."""
    line = next(line for line in out.splitlines() if line.startswith("rehearsal: in a copy"))
    return Path(line.split("project, ", 1)[1].rsplit(" (the project", 1)[0])


def start_cli(*args: str | Path) -> subprocess.Popen[str]:
    """`python -m orchestrator ARGS`, started in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def report(project: Path) -> dict[str, Any]:
    """The newest run's report.json."""
    (path,) = sorted((project / STATE_DIR_NAME / "runs").glob("*/report.json"))[-1:]
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def stories(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A report's stories by id."""
    return {s["story_id"]: s for s in data["stories"]}


async def sessions_left(project: Path, socket: str) -> list[str]:
    """The names of the sessions of the default prefix still on the socket."""
    return [row.name for row in await TmuxAgentManager(project, socket=socket).list_sessions()]


async def wait_until(
    condition: Callable[[], object], *, folder: Path, timeout: float = 60, what: str = ""
) -> None:
    """Wait (on file events in `folder`, and ticks) until `condition()` is true."""
    result = await wait_for_output(
        lambda: True if condition() else None, watch=[folder], timeout=timeout
    )
    assert result.done, f"{what or 'the condition'} never held within {timeout}s"


async def wait_for_run(project: Path, story: str, stage: str) -> None:
    """Wait until the simulated agent started `stage` of `story`."""
    state = project / STATE_DIR_NAME
    await wait_until(
        lambda: runs(project).get(story, {}).get(stage),
        folder=state / "simulated",
        what=f"{story} {stage} starting",
    )


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether `pid` is dead by `within` s (a SIGKILL lands a moment after it is sent)."""
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def orphan_after_server_death(
    project: Path, socket: str
) -> tuple[TmuxAgentManager, str, int]:
    """A simulated agent whose child ignores SIGHUP, on a tmux server that was then killed:
    (its manager, the session's name, the surviving child's pid)."""
    manager = TmuxAgentManager(project, socket=socket)
    argv = simulated_argv("--misbehave", "orphan-child", "--ignore-sighup")
    session = await manager.spawn(
        "dev", "1.1", profile=make_profile("simulated", argv), prompt="work"
    )
    pid_file = manager.state_dir / "simulated" / "orphan-1.1-dev.pid"
    await wait_until(pid_file.exists, folder=manager.state_dir)
    orphan = int(pid_file.read_text())
    manager.server.kill()  # the tmux server dies; the orphan ignores SIGHUP and lives on
    assert alive(orphan)
    return manager, session.name, orphan


def git(cwd: Path, *args: str) -> str:
    """A test's own git command (its identity set, no hooks, no signing); returns stdout."""
    argv = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    argv += ["-c", "commit.gpgSign=false", "-c", "core.hooksPath=/dev/null", *args]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def git_repo(folder: Path, *, branch: str = "main") -> Path:
    """Make `folder` a git repository with everything in it committed."""
    git(folder, "init", "-q", "-b", branch)
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "Initial commit")
    return folder


def tree_snapshot(folder: Path, *, skip: str = STATE_DIR_NAME) -> dict[str, bytes]:
    """Every file under `folder` (but `.git` and `skip`) with its bytes: a working tree's state."""
    found: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if relative.parts[0] in (".git", skip) or path.is_dir():
            continue
        found[str(relative)] = path.read_bytes()
    return found


def typed_text(line: str) -> str:
    """What a typed line said: itself, or the text of the file it points to (long texts)."""
    pointed = pointed_text(line)
    return pointed.rstrip("\n") if pointed is not None else line


@contextlib.contextmanager
def dripping_server(interval: float = 0.3) -> Iterator[str]:
    """A webhook on 127.0.0.1 that takes the POST, then sends one byte every `interval`
    seconds and never finishes its answer; yields its URL (with credentials in it)."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                if stop.wait(interval):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://user:secret-pw@127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        listener.close()
