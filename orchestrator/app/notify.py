"""Notices for people: a webhook and/or a command, for the events they chose.

A notice never fails a story: delivery runs beside the run, is retried a few times, and failures
are logged. Webhook URLs carry secrets (Slack and Discord put the token in the path), so a URL is
only ever shown as its scheme and host; the full URL stays in epic.yaml and memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, field_serializer, field_validator

from orchestrator.app.runs import StoryReport
from orchestrator.eventlog import EventLog
from orchestrator.redaction import redact_url
from state.context import Settings

NoticeEvent = Literal["story_done", "story_failed", "waiting_for_person", "run_finished"]
NOTICE_EVENTS: tuple[NoticeEvent, ...] = (
    "story_done",
    "story_failed",
    "waiting_for_person",
    "run_finished",
)
RETRY_PAUSES = (1.0, 3.0)  # between the delivery attempts (pacing retries, not synchronising)


class NotifySettings(Settings):
    """`notify:` in epic.yaml."""

    webhook: str | None = None
    command: list[str] = Field(default_factory=list)
    events: list[NoticeEvent] = Field(default_factory=lambda: list(NOTICE_EVENTS))
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("a webhook is an http:// or https:// URL")
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
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, event: NoticeEvent, **fields: Any) -> None:
        """Queue a notice if the user chose this event (never raises)."""
        if event not in self.settings.events or not (
            self.settings.webhook or self.settings.command
        ):
            return
        body = {"event": event, "at": datetime.now(UTC).isoformat(), **fields}
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._deliver, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (up to `timeout`) for the notices still being delivered."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks), timeout)

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
        assert self.settings.webhook is not None
        parts = urlsplit(self.settings.webhook)
        headers = {"Content-Type": "application/json", "User-Agent": "bmad-orchestrator"}
        target = self.settings.webhook
        if parts.username is not None:  # user:password@ in the URL: HTTP basic auth
            login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
            netloc = parts.hostname or ""
            netloc += f":{parts.port}" if parts.port else ""
            target = urlunsplit(parts._replace(netloc=netloc))
        request = urllib.request.Request(target, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
            if response.status >= 300:
                raise urllib.error.HTTPError(self.settings.webhook, response.status, "", {}, None)  # type: ignore[arg-type]

    def _run(self, data: bytes) -> None:
        done = subprocess.run(
            self.settings.command,
            input=data,
            capture_output=True,
            timeout=self.settings.timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"exited {done.returncode}: {done.stderr.decode(errors='replace')[-200:]}"
            )
