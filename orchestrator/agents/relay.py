"""The hook relay: what an agent CLI's hook runs to tell the orchestrator something, and to ask it.

Run by the CLI as `"$BMAD_PYTHON" -I -S "$BMAD_RELAY" KIND` (standard library only, no site,
so it starts in a few milliseconds and nothing of the project's can change it). The payload is
the hook's stdin, or the last argument (Codex's `notify`).

- `turn-end` / `attention`: keep the payload in `BMAD_TURN_END_FILE` / `BMAD_ATTENTION_FILE`
  (owner-only, replaced atomically) with a request id, then wait up to `BMAD_STEER_SECONDS`
  for the orchestrator's answer in `<file>.reply` and print it: that is how a nudge continues
  the turn, or a question is answered, without typing. No answer in time: print `{}` (the CLI
  goes on as it would without us) and the orchestrator falls back to typing.
- `turn-ended` / `signal`: keep the payload as a turn end / attention signal and wait for
  nothing (an API error ended the turn; a permission dialog is up).
- `submitted`: note that a prompt was submitted (`BMAD_SUBMIT_FILE`): typed input's evidence.
- `notify`: a turn end that cannot be answered (Codex runs `notify` after the turn); a payload
  of a thread without a rollout file (Codex's title thread) is not the session's and is dropped.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time
import uuid

POLL = 0.02  # seconds between looks for the answer: a poll interval, bounded by the deadline
DEFAULT_STEER_SECONDS = 30.0
FILES = {
    "turn-end": "BMAD_TURN_END_FILE",
    "turn-ended": "BMAD_TURN_END_FILE",
    "attention": "BMAD_ATTENTION_FILE",
    "signal": "BMAD_ATTENTION_FILE",
    "submitted": "BMAD_SUBMIT_FILE",
    "notify": "BMAD_TURN_END_FILE",
}
ASKS = ("turn-end", "attention")


def write_private(path: str, data: str) -> None:
    """Replace `path` atomically with an owner-only file (never written through a link)."""
    temporary = f"{path}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def read_payload(kind: str, args: list[str]) -> dict[str, object]:
    """The hook's payload: the last argument for `notify`, else stdin (anything not JSON kept)."""
    raw = args[-1] if kind == "notify" and args else sys.stdin.read()
    try:
        value = json.loads(raw)
    except ValueError:
        value = {"raw": raw[-4000:]}
    return value if isinstance(value, dict) else {"value": value}


def await_answer(path: str, request: str, seconds: float) -> str | None:
    """The orchestrator's answer to `request`, taken (so it knows), or None at the deadline."""
    reply = f"{path}.reply"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(reply, encoding="utf-8") as handle:
                answer = json.load(handle)
        except (OSError, ValueError):
            time.sleep(POLL)
            continue
        if isinstance(answer, dict) and answer.get("request") == request:
            os.unlink(reply)
            write_private(f"{path}.taken", request)
            return str(answer.get("output") or "{}")
        time.sleep(POLL)
    return None


def rollout(payload: dict[str, object]) -> str | None:
    """The rollout file of the Codex thread a payload names, if it has one (its title thread
    has none: that payload is not the session's)."""
    thread = payload.get("thread-id")
    if not isinstance(thread, str) or not thread.replace("-", "").isalnum():
        return None
    home = os.environ.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")
    sessions = os.path.join(glob.escape(home), "sessions")
    found = sorted(glob.glob(os.path.join(sessions, "*", "*", "*", f"*-{thread}.jsonl")))
    return found[-1] if found else None


def main(argv: list[str]) -> int:
    """Relay one hook event; always exit 0 so a problem here never blocks the agent."""
    kind = argv[1] if len(argv) > 1 else ""
    path = os.environ.get(FILES.get(kind, ""), "")
    payload = read_payload(kind, argv[2:])
    output: str | None = None
    if kind == "notify" and "thread-id" in payload:
        found = rollout(payload)
        if found is None:
            path = ""  # another thread's turn: not this session's
        payload["bmad_rollout"] = found
    if path:
        request = uuid.uuid4().hex
        try:
            seconds = float(os.environ.get("BMAD_STEER_SECONDS") or DEFAULT_STEER_SECONDS)
        except ValueError:
            seconds = DEFAULT_STEER_SECONDS
        asks = kind in ASKS and seconds > 0
        payload = {**payload, "bmad_kind": kind}
        if asks:
            payload |= {"bmad_request": request, "bmad_until": time.time() + seconds}
        try:
            write_private(path, json.dumps(payload))
            if asks:
                output = await_answer(path, request, seconds)
        except OSError:
            output = None
    if kind != "notify":
        print(output or "{}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
