"""Steering an agent through its CLI's own hooks: the orchestrator's side of `relay.py`.

A hook that asks (a turn end, a question) leaves a request id in its signal file and waits for
`<signal file>.reply`. Answering it continues the turn with a nudge, or answers a question,
without typing a character; the relay marks the answer taken, which is the evidence that the CLI
received it. A hook that gave up waiting (or a CLI without such hooks) is answered by typing.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.blocking import FILES
from orchestrator.files import read_private, write_private

RELAY = Path(__file__).with_name("relay.py")
# The line typed for a text too long to type: the agent reads the rest from the file.
POINTER = "Read {path} and do what it says."
_POINTED = re.compile(r"Read (/\S+) and do what it says\.")
TAKEN_TIMEOUT = 5.0  # seconds for a waiting hook to take an answer (it looks every 20 ms)
POLL = 0.02


def relay_env() -> dict[str, str]:
    """The session variables the hook commands use to find the relay."""
    return {"BMAD_PYTHON": sys.executable, "BMAD_RELAY": str(RELAY)}


def hook_command(kind: str) -> str:
    """A hook command (constant text: paths come from the session's environment)."""
    return (
        f'if [ -n "$BMAD_RELAY" ]; then "$BMAD_PYTHON" -I -S "$BMAD_RELAY" {kind}; '
        "else cat > /dev/null; printf '{}'; fi"
    )


def pointed_text(line: str) -> str | None:
    """The text a typed pointer line stands for (the file it names), or None."""
    found = _POINTED.fullmatch(line.strip())
    if found is None:
        return None
    try:
        return Path(found.group(1)).read_text()
    except OSError:
        return None


def read_signal(path: Path) -> dict[str, Any] | None:
    """The payload a hook left in a signal file, or None."""
    try:
        value = json.loads(read_private(path))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def waiting_request(payload: dict[str, Any] | None, signal: Path) -> str | None:
    """The request id of a hook that still waits for an answer (with a second to spare, and
    not answered already)."""
    if payload is None:
        return None
    request, until = payload.get("bmad_request"), payload.get("bmad_until")
    if not isinstance(request, str) or not isinstance(until, int | float):
        return None
    if until <= time.time() + 1:
        return None
    try:
        if read_private(Path(f"{signal}.taken")).strip() == request:
            return None
    except OSError:
        pass
    return request


def question_text(payload: Any) -> str | None:
    """The question a hook's payload carries (the first `question` string in it), if any."""
    if isinstance(payload, dict):
        found = payload.get("question")
        if isinstance(found, str) and found.strip():
            return found.strip()
        payload = list(payload.values())
    if isinstance(payload, list):
        for item in payload:
            found = question_text(item)
            if found:
                return found
    return None


def answered(signal: Path) -> bool:
    """Whether the hook that wrote `signal` was answered already (the agent goes on)."""
    payload = read_signal(signal)
    request = payload.get("bmad_request") if payload else None
    try:
        return isinstance(request, str) and read_private(Path(f"{signal}.taken")).strip() == request
    except OSError:
        return False


async def answer(
    signal: Path, request: str, output: str, *, timeout: float = TAKEN_TIMEOUT
) -> bool:
    """Give the waiting hook `output` to print; True once the relay took it."""
    taken = Path(f"{signal}.taken")
    taken.unlink(missing_ok=True)
    await FILES.run(
        write_private, Path(f"{signal}.reply"), json.dumps({"request": request, "output": output})
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if read_private(taken).strip() == request:
                return True
        except OSError:
            pass
        await asyncio.sleep(POLL)
    Path(f"{signal}.reply").unlink(missing_ok=True)  # too late: a later hook must not take it
    return False
