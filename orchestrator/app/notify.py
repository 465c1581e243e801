"""Notices for people: a webhook and/or a command, for the events they chose.

A notice never fails or delays a story: delivery runs on the notifier's own thread (never the
event loop's shared pool, which checks, spawns and kills need), notices go out in order, each
attempt ends by `timeout` however slowly a server drips its answer (a watchdog closes the
connection), at most `MAX_PENDING` notices wait, and failures are logged. A webhook is never
redirected (a redirect would carry its credentials to another host): a 3xx is a failed delivery.
Webhook URLs carry secrets (Slack and Discord put the token in the path), so a URL is only ever
shown as its scheme and host; the full URL stays in epic.yaml and memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import queue
import socket
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, field_serializer, field_validator

from orchestrator import commands
from orchestrator.app.ids import CONTROL
from orchestrator.app.runs import StoryReport
from orchestrator.eventlog import EventLog
from orchestrator.redaction import redact_url
from orchestrator.state.context import Settings

NoticeEvent = Literal["story_done", "story_failed", "waiting_for_person", "run_finished"]
NOTICE_EVENTS: tuple[NoticeEvent, ...] = (
    "story_done",
    "story_failed",
    "waiting_for_person",
    "run_finished",
)
RETRY_PAUSES = (1.0, 3.0)  # between the delivery attempts (pacing retries, not synchronising)
MAX_PENDING = 64  # notices queued or in flight; more are dropped, and said so
STDERR_KEPT = 4096  # bytes of a failing notice command's stderr kept for the log


class NotifySettings(Settings):
    """`notify:` in epic.yaml."""

    webhook: str | None = None
    command: list[str] = Field(default_factory=list)
    events: list[NoticeEvent] = Field(default_factory=lambda: list(NOTICE_EVENTS))
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            raise ValueError("a webhook is an http:// or https:// URL")
        if CONTROL.search(value):
            raise ValueError("the URL holds a control character (a newline, a tab...)")
        try:  # what `redact_url` reads to show it; never quoted: it may hold a password
            known = parts.hostname and parts.port != 0
        except ValueError:
            known = False
        if not known:
            raise ValueError(
                "the host or port cannot be read: a port is a number from 1 to 65535, and "
                "'@', '/', '?' and '#' in a user name or password are percent-encoded"
            )
        return value

    @field_serializer("webhook")
    def _hidden(self, value: str | None) -> str | None:
        return redact_url(value) if value else None


def story_notice(report: StoryReport) -> tuple[NoticeEvent, dict[str, Any]] | None:
    """The notice a story's report calls for, with its fields (None: no notice)."""
    fields: dict[str, Any] = {
        "story": report.story_id,
        "result": report.result,
        "reason": report.reason,
    }
    if report.result == "waiting" and report.waiting:
        asked = report.waiting
        keys = ("stage", "gate", "question", "answer")
        return "waiting_for_person", {**fields, **{key: asked.get(key) for key in keys}}
    if report.result in ("done", "already done"):
        return "story_done", fields
    if report.result in ("failed", "merge_conflict", "over_budget", "error"):
        return "story_failed", fields
    return None


class Notifier:
    """Sends notices in the background; `drain()` waits for those in flight at the end."""

    def __init__(self, settings: NotifySettings, events: EventLog) -> None:
        self.settings = settings
        self.events = events
        self._tasks: set[asyncio.Future[None]] = set()
        self._queue: queue.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = queue.Queue()
        self._worker: threading.Thread | None = None

    def send(self, event: NoticeEvent, **fields: Any) -> None:
        """Queue a notice if the user chose this event (never raises, never waits)."""
        if event not in self.settings.events or not (
            self.settings.webhook or self.settings.command
        ):
            return
        if len(self._tasks) >= MAX_PENDING:
            self.events.write("notify-dropped", notice=event, pending=len(self._tasks))
            return
        body = {"event": event, "at": datetime.now(UTC).isoformat(), **fields}
        task: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._queue.put((body, task))
        if self._worker is None:
            # One daemon thread delivers in order; one still under way never holds the exit.
            self._worker = threading.Thread(target=self._work, name="bmad-notify", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            body, task = self._queue.get()
            try:
                self._deliver(body)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop may be gone at exit
                    task.get_loop().call_soon_threadsafe(_finish, task)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (up to `timeout`) for the notices still being delivered; say what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        if pending:  # their thread dies with the process
            self.events.write("notify-abandoned", pending=len(pending), waited=timeout)

    def _deliver(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        targets = []
        if self.settings.webhook:
            targets.append(("webhook", redact_url(self.settings.webhook), self._post))
        if self.settings.command:
            targets.append(("command", self.settings.command[0], self._run))
        for kind, shown, deliver in targets:
            error = ""
            for attempt, pause in enumerate((*RETRY_PAUSES, None), start=1):
                try:
                    deliver(data)
                except Exception as exc:  # any failure is logged and retried, never raised
                    error = self._describe(exc)
                    if pause is not None:
                        time.sleep(pause)
                    continue
                self.events.write(
                    "notify", kind=kind, to=shown, notice=body["event"], attempt=attempt
                )
                break
            else:
                self.events.write(
                    "notify-error", kind=kind, to=shown, notice=body["event"], error=error
                )

    def _describe(self, exc: Exception) -> str:
        text = f"{type(exc).__name__}: {exc}"
        if self.settings.webhook:  # an error may quote the URL: never let it out
            text = text.replace(self.settings.webhook, redact_url(self.settings.webhook))
            parts = urlsplit(self.settings.webhook)
            for secret in (parts.path, parts.query, parts.password or "", parts.username or ""):
                if len(secret) > 1:
                    text = text.replace(secret, "…")
        return text[:300]

    def _post(self, data: bytes) -> None:
        """One POST, over by `timeout` whatever the server does; never redirected."""
        assert self.settings.webhook is not None
        parts = urlsplit(self.settings.webhook)
        headers = {"Content-Type": "application/json", "User-Agent": "bmad-orchestrator"}
        if parts.username is not None:  # user:password@ in the URL: HTTP basic auth
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        timeout = self.settings.timeout
        connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
        fired = threading.Event()
        watchdog = threading.Timer(timeout, _abort, (connection, fired))
        watchdog.start()
        try:
            path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
            connection.request("POST", path, body=data, headers=headers)
            response = connection.getresponse()
            response.read(64 << 10)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            if fired.is_set():  # what broke the connection was the deadline
                raise TimeoutError(f"no answer within {timeout:g}s") from exc
            raise
        finally:
            watchdog.cancel()
            connection.close()
        if 300 <= status < 400:
            raise RuntimeError(f"HTTP {status}: a webhook is never redirected")
        if status >= 300:
            raise RuntimeError(f"HTTP {status}")

    def _run(self, data: bytes) -> None:
        """The command, the JSON on stdin; only the tail of its stderr is kept."""
        with tempfile.TemporaryFile() as stderr:
            done = commands.run(  # past the timeout, stopped with whatever it started
                self.settings.command,
                input=data,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                timeout=self.settings.timeout,
            )
            if done.returncode == 0:
                return
            size = stderr.seek(0, os.SEEK_END)
            stderr.seek(max(0, size - STDERR_KEPT))
            tail = stderr.read().decode(errors="replace")[-200:]
        raise RuntimeError(f"exited {done.returncode}: {tail}")


def _finish(task: asyncio.Future[None]) -> None:
    if not task.done():
        task.set_result(None)


def _abort(connection: http.client.HTTPConnection, fired: threading.Event) -> None:
    """The deadline passed: closing the socket ends whatever read or write is blocked on it."""
    fired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
