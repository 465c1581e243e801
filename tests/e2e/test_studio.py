"""LangGraph Studio: the real `langgraph dev` server lists and runs the story graph, offline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from orchestrator.tmux import TmuxAgentManager
from tests.helpers import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, body: dict | None = None, timeout: float = 10) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())


async def test_langgraph_dev_serves_and_runs_the_story_graph(
    tmp_path: Path, project: Path, socket: str
) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
    }
    cli = Path(sys.executable).parent / "langgraph"
    server = subprocess.Popen(
        [
            str(cli),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                request(f"{base}/ok")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "langgraph dev did not come up"
                time.sleep(0.2)  # poll interval while waiting for the port
        assistants = request(f"{base}/assistants/search", {"graph_id": "story"})
        assert isinstance(assistants, list) and assistants
        drawing = request(f"{base}/assistants/{assistants[0]['assistant_id']}/graph")
        nodes = {node["id"] for node in drawing["nodes"]}  # type: ignore[index]
        assert {"sm", "po", "dev", "qa", "done", "failed"} <= nodes
        # A story run through the server's own API, context as JSON as Studio sends it. The dev
        # server flags blocking calls on its event loop, so this proves the nodes never block.
        context = {
            "project": str(project),
            "socket": socket,
            "agent": {"profile": "simulated"},
            "stages": {s: {"timeout": 60} for s in ("sm", "po", "dev", "qa")},
        }
        body = {
            "assistant_id": assistants[0]["assistant_id"],  # type: ignore[index]
            "input": {"story_id": "3.1"},
            "context": context,
        }
        final = await asyncio.to_thread(request, f"{base}/runs/wait", body, 120)
        assert isinstance(final, dict), final
        assert final.get("result") == "done", final
        assert final["outcomes"] == {
            "sm": "drafted",
            "po": "approved",
            "dev": "implemented",
            "qa": "PASS",
            "integrate": "shared",
        }
        assert await TmuxAgentManager(project, socket=socket).list_sessions() == []
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    # Nothing of the server's process group survives.
    try:
        os.killpg(server.pid, 0)
        survived = True
    except ProcessLookupError:
        survived = False
    assert not survived
