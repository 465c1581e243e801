"""Gemini CLI: `-i PROMPT` (stays interactive), `--session-id`, hooks through a system layer.

Gemini has no `--settings` flag; `GEMINI_CLI_SYSTEM_SETTINGS_PATH` points its highest settings
layer at a file for the one process. The orchestrator writes that file with its hooks, merged
into the system settings the user already has, so hook arrays from every layer still run.
Gemini skips a system settings file (every hook in it, with a "Security Warning" on screen)
unless the file and each folder above it are owned by root and writable by nobody else; so the
file goes in the run dir when that holds, else in a folder of ours under
`~/.local/state/bmad-orchestrator`, and when neither can hold (not root) the attempt records
that its turns end on quiet instead. Gemini runs no hook at all (and ignores `--approval-mode
yolo`) in a folder it does not trust, and answering its trust screen restarts it; so the
session's folder is trusted for that one process with `GEMINI_CLI_TRUST_WORKSPACE=true`, as
answering would, without writing the user's trusted-folders file.

Hooks: `AfterAgent` ends a turn and may answer `{"decision": "deny", "reason": R}`, which gives
the model another turn with R as its input (a nudge, no typing); `BeforeTool` for `ask_user`
may deny the question with a reason the model reads; `BeforeAgent` fires when a prompt is
submitted; `Notification` (ToolPermission) asks for a person. A hook's stdout is parsed as its
verdict: the relay prints `{}` when it has nothing to say.

Usage: the chat recording (`~/.gemini/tmp/<project>/chats/session-<time>-<id8>.jsonl`, its path
also given to hooks as `transcript_path`). A message is appended again on every update, so the
last line per id counts, `$rewindTo` drops messages and `$set` replaces them. `input` includes
the cached tokens.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
    ATTENTION_HOOK,
    SIGNAL_HOOK,
    SUBMITTED_HOOK,
    TURN_END_HOOK,
    CliSpec,
    Dialog,
    Launch,
    LaunchSpec,
    UsageQuery,
    UsageRecord,
    home,
    json_lines,
    number,
)
from orchestrator.agents.clis.standin import (
    Session,
    StandIn,
    Tokens,
    append,
    commands,
    data_home,
    now_iso,
    run_hook,
)
from orchestrator.agents.usage import ModelTokens
from orchestrator.files import user_state_folder

SYSTEM_SETTINGS = "/etc/gemini-cli/settings.json"


HOOK_TIMEOUT_MS = 60000  # the relay answers `{}` well before this
OUR_HOOKS = (
    ("AfterAgent", None, TURN_END_HOOK),
    ("BeforeTool", "ask_user", ATTENTION_HOOK),
    ("BeforeAgent", None, SUBMITTED_HOOK),
    ("Notification", None, SIGNAL_HOOK),
)


def hook_settings(base: dict[str, Any]) -> dict[str, Any]:
    """`base` (the user's system settings) with our hooks added to its hook arrays."""
    settings = dict(base)
    hooks = dict(settings["hooks"]) if isinstance(settings.get("hooks"), dict) else {}
    for event, matcher, line in OUR_HOOKS:
        entry: dict[str, Any] = {
            "hooks": [{"type": "command", "command": line, "timeout": HOOK_TIMEOUT_MS}]
        }
        if matcher:
            entry["matcher"] = matcher
        existing = hooks.get(event)
        kept: list[Any] = existing if isinstance(existing, list) else []
        hooks[event] = [*kept, entry]
    settings["hooks"] = hooks
    return settings


def steer(payload: Mapping[str, Any], text: str) -> str | None:
    """`AfterAgent` denied (the model goes on with `text`); `ask_user` denied with `text`."""
    if payload.get("hook_event_name") in ("AfterAgent", "BeforeTool"):
        return json.dumps({"decision": "deny", "reason": text})
    return None


def accepted_folder(folder: Path) -> bool:
    """Whether Gemini reads a system settings file in `folder`: it and every folder above it
    (as given and resolved) owned by root and writable by no group or other user."""
    for start in {folder, folder.resolve()}:
        for path in (start, *start.parents):
            try:
                info = os.stat(path)
            except OSError:
                return False
            if info.st_uid != 0 or info.st_mode & 0o022:
                return False
    return True


def settings_folder(run_dir: Path) -> Path | None:
    """Where this session's settings file can go so that Gemini reads it, or None."""
    if accepted_folder(run_dir):
        return run_dir
    if os.geteuid() != 0:
        return None
    home = Path.home()
    if not accepted_folder(home):
        return None
    try:
        ours = user_state_folder("gemini")
    except OSError:
        return None
    return ours if accepted_folder(ours) else None


def _system_settings() -> dict[str, Any]:
    path = os.environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH") or SYSTEM_SETTINGS
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def chat_file(query: UsageQuery) -> Path | None:
    """The session's chat recording: the hook's `transcript_path`, or found by session id."""
    hinted = (query.turn_end or {}).get("transcript_path")
    if isinstance(hinted, str) and hinted and Path(hinted).is_file():
        return Path(hinted)
    root = home(query.env, "GEMINI_CLI_HOME", "") / ".gemini" / "tmp"
    for path in sorted(root.glob(f"*/chats/session-*-{query.session_id[:8]}.jsonl")):
        first = next(json_lines(path), {})
        if first.get("sessionId") == query.session_id:
            return path
    return None


def messages(path: Path) -> list[dict[str, Any]]:
    """The conversation as Gemini loads it: the last version of each message, rewinds applied."""
    order: list[str] = []
    latest: dict[str, dict[str, Any]] = {}
    for record in json_lines(path):
        if "$rewindTo" in record:
            target = str(record["$rewindTo"])
            if target in order:
                for gone in order[order.index(target) :]:
                    latest.pop(gone, None)
                order = order[: order.index(target)]
        elif isinstance(record.get("$set"), dict) and "messages" in record["$set"]:
            replaced = [m for m in record["$set"]["messages"] if isinstance(m, dict)]
            order = [str(m.get("id")) for m in replaced]
            latest = {str(m.get("id")): m for m in replaced}
        elif "id" in record and "type" in record:
            key = str(record["id"])
            if key not in latest:
                order.append(key)
            latest[key] = record
    return [latest[key] for key in order if key in latest]


class Gemini:
    """Gemini CLI's hooks and usage."""

    name = "gemini"

    def launch(self, spec: LaunchSpec) -> Launch:
        """The hooks file as the system layer (where Gemini accepts it), the folder trusted."""
        launch = Launch(
            args=["--session-id", spec.session_id], env={"GEMINI_CLI_TRUST_WORKSPACE": "true"}
        )
        folder = settings_folder(spec.run_dir)
        content = json.dumps(hook_settings(_system_settings()), indent=1)
        if folder is None:
            launch.warnings.append(
                "Gemini reads hooks only from a settings file in folders owned by root and "
                f"writable by nobody else; {spec.run_dir} is not one, so this session's turns "
                "end on quiet and nudges are typed"
            )
        elif folder == spec.run_dir:
            settings = folder / f"{spec.name}.gemini-settings.json"
            launch.files[settings] = content
        else:
            settings = folder / f"{spec.name}-{uuid.uuid4().hex[:8]}.json"
            launch.private_files[settings] = content
        if folder is not None:
            launch.env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = str(settings)
        return launch

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """See `steer`."""
        return steer(payload, text)

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """Tokens per model of the recorded conversation."""
        path = chat_file(query)
        if path is None:
            return None
        per_model: dict[str, ModelTokens] = {}
        for message in messages(path):
            tokens = message.get("tokens")
            if message.get("type") != "gemini" or not isinstance(tokens, dict):
                continue
            cached = number(tokens.get("cached"))
            per_model.setdefault(str(message.get("model") or "unknown"), ModelTokens()).add(
                ModelTokens(
                    input=max(0, number(tokens.get("input")) - cached) + number(tokens.get("tool")),
                    output=number(tokens.get("output")) + number(tokens.get("thoughts")),
                    cache_read=cached,
                )
            )
        return UsageRecord(per_model, source=str(path))


# Idle: the empty input box's placeholder (after `>`, or `*` in YOLO mode). A `>` line alone is
# no sign: the echo of an earlier prompt in the scrollback starts with one too.
READY = re.compile(r"Type your message")
DIALOGS = (
    # Only shown when trust is left to the screen; answering it restarts Gemini.
    Dialog("folder-trust", re.compile(r"Do you trust the files in this folder"), ("Enter",)),
)


class GeminiStandIn(StandIn):
    """Gemini as the simulated agent plays it: system-settings hooks, the chat recording."""

    idle_text = "  Type your message or @path/to/file"
    default_model = "gemini-2.5-pro"

    def trust_screen(self, cwd: Path) -> str | None:
        """Its folder-trust screen."""
        return (
            f"Do you trust the files in this folder?\n\n● 1. Trust folder ({cwd})\n"
            "  2. Trust parent folder\n  3. Don't trust"
        )

    def end_turn(
        self, session: Session, prompt: str, message: str, transcript: Path | None
    ) -> None:
        """`AfterAgent`, whose stdout Gemini parses as JSON."""
        payload = {
            "session_id": session.session_id,
            "transcript_path": str(transcript or ""),
            "cwd": str(session.cwd),
            "hook_event_name": "AfterAgent",
            "timestamp": now_iso(),
            "prompt": prompt[:200],
            "prompt_response": message,
            "stop_hook_active": False,
        }
        for command in hooks("AfterAgent"):
            out = run_hook(["/bin/sh", "-c", command], payload).strip()
            if out:
                json.loads(out)

    def ask(self, session: Session, question: str) -> bool:
        """`Notification` of a tool permission."""
        payload = {
            "session_id": session.session_id,
            "hook_event_name": "Notification",
            "notification_type": "ToolPermission",
            "message": f"Tool Shell requires execution: {question}",
            "details": {"type": "exec", "title": "Shell", "command": "rm -rf build"},
            "cwd": str(session.cwd),
            "timestamp": now_iso(),
        }
        found = hooks("Notification")
        for command in found:
            run_hook(["/bin/sh", "-c", command], payload)
        return bool(found)

    def record_usage(self, session: Session, tokens: Tokens) -> Path | None:
        """One model message in the chat recording, appended again once its tokens are in."""
        slug = re.sub(r"[^a-z0-9]", "-", session.cwd.name.lower())
        folder = data_home("GEMINI_CLI_HOME", "") / ".gemini" / "tmp" / slug / "chats"
        short = session.session_id[:8]
        existing = sorted(folder.glob(f"session-*-{short}.jsonl"))
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M")
        path = existing[0] if existing else folder / f"session-{stamp}-{short}.jsonl"
        if not existing:
            start = {"sessionId": session.session_id, "startTime": now_iso()}
            append(path, {**start, "lastUpdated": now_iso()})
        turn = session.turns
        message = {
            "id": f"m{turn}",
            "timestamp": now_iso(),
            "type": "gemini",
            "model": tokens.model,
        }
        counts = {
            "input": tokens.input + tokens.cache_read,
            "output": tokens.output,
            "cached": tokens.cache_read,
            "thoughts": 0,
            "tool": 0,
            "total": tokens.input + tokens.cache_read + tokens.output,
        }
        append(path, message, {**message, "tokens": counts})
        return path


def hooks(event: str) -> list[str]:
    """Commands of `event` from the system settings file Gemini is pointed at (none at all in
    a folder it does not trust)."""
    path = os.environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH")
    if not path or os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") != "true":
        return []
    return commands(json.loads(Path(path).read_text()).get("hooks", {}).get(event, []))


SPEC = CliSpec(
    "gemini",
    "gemini",
    Gemini(),
    ready=READY,
    dialogs=DIALOGS,
    prompt_flag=("-i",),
    submit_signal=True,
    # "Security Warning: Skipping system settings file '…': Parent directory '/tmp' is insecure"
    # (spaces may be cursor moves in the log, hence \s*).
    hooks_off=re.compile(r"Skipping\s*system\s*settings\s*file[^\n]*"),
    tested=("0.61.0", "0.61.0"),
    standin=GeminiStandIn(),
    unattended=("--approval-mode", "yolo"),
    permission_flags=("--approval-mode", "--yolo", "-y"),
)
