"""Notices against real servers on the loopback: a server that drips its answer cannot hold a
delivery past its deadline, a redirect never carries the webhook's credentials, and a notice
command's output is not kept."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.app import notify
from orchestrator.app.notify import Notifier, NotifySettings
from orchestrator.eventlog import EventLog
from orchestrator.files import StateDir
from tests.helpers import dripping_server, gone


@pytest.fixture
def events(tmp_path: Path) -> EventLog:
    return EventLog(StateDir(tmp_path / "state"))


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "RETRY_PAUSES", (0.0, 0.0))


@pytest.fixture
def dripping() -> Iterator[str]:
    with dripping_server() as url:
        yield url


def written(events: EventLog, kind: str) -> list[dict[str, object]]:
    return [e for e in events.read() if e["event"] == kind]


async def test_a_dripping_webhook_ends_at_its_deadline_and_blocks_nothing_else(
    dripping: str, events: EventLog
) -> None:
    url = dripping
    notifier = Notifier(NotifySettings(webhook=url, timeout=1.0), events)
    notifier.send("story_done", story="1.1")
    # The event loop's own pool is free: a check or a kill does not queue behind the webhook.
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 5) == "free"
    await notifier.drain(timeout=60)
    (failure,) = written(events, "notify-error")
    assert "no answer within 1s" in str(failure["error"])
    assert "secret-pw" not in str(failure)


def test_a_redirect_is_refused_and_carries_no_credentials(events: EventLog) -> None:
    received: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.2", 0), Elsewhere)
    target = f"http://127.0.0.2:{other.server_address[1]}/stolen"

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (other, first):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://user:secret-pw@127.0.0.1:{first.server_address[1]}/hook"
        Notifier(NotifySettings(webhook=url), events)._deliver({"event": "story_done"})
    finally:
        for server in (other, first):
            server.shutdown()
            server.server_close()
    assert received == []
    (failure,) = written(events, "notify-error")
    assert "302" in str(failure["error"]) and "never redirected" in str(failure["error"])
    assert written(events, "notify") == []  # not logged as delivered


def test_a_notice_commands_output_is_not_kept_only_its_stderr_tail(events: EventLog) -> None:
    noisy = (
        "import sys; sys.stdout.write('o' * 20_000_000); "
        "sys.stderr.write('e' * 20_000_000 + 'THE END'); sys.exit(3)"
    )
    notifier = Notifier(NotifySettings(command=[sys.executable, "-c", noisy], timeout=60), events)
    notifier._deliver({"event": "story_done"})
    (failure,) = written(events, "notify-error")
    assert "exited 3" in str(failure["error"]) and str(failure["error"]).endswith("THE END")
    assert len(str(failure["error"])) <= 300


def test_a_notice_command_past_its_timeout_is_stopped_with_what_it_started(
    events: EventLog, tmp_path: Path
) -> None:
    """`subprocess.run(timeout=)` killed the shell only: its children ran on, holding files."""
    pid_file = tmp_path / "child.pid"
    command = ["sh", "-c", f"sleep 1000 & echo $! > {pid_file}; wait"]
    notifier = Notifier(NotifySettings(command=command, timeout=1.0), events)
    notifier._deliver({"event": "story_done"})
    (failure,) = written(events, "notify-error")
    assert "timed out after 1" in str(failure["error"])
    assert gone(int(pid_file.read_text()))
