"""GitHub Copilot CLI: `-i PROMPT` (stays interactive), `--session-id`, repository hooks.

Copilot reads hooks only from files (the repository's `.github/hooks/*.json`, the user's
`~/.copilot/hooks/`), never from a flag or variable, so the orchestrator writes
`.github/hooks/bmad-orchestrator-<session id>.json` at the root of the repository the session runs
in (the story's worktree, where it is never committed, or the project) and removes it when the
session ends. Repository hooks load once the folder is trusted (the trust screen is answered).
`agentStop` also fires for subagents' turns (with an empty `transcriptPath`): those are not the
end of the agent's turn and are skipped.

Usage: Copilot persists token totals only in the `session.shutdown` event it appends to
`{COPILOT_HOME or ~/.copilot}/session-state/<session id>/events.jsonl` when a session ends;
per-call usage events are never written to disk. A session killed before it could write that
line has unknown usage.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
    ENDED_HOOK,
    SIGNAL_HOOK,
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
    data_home,
    now_iso,
    run_hook,
)
from orchestrator.agents.usage import ModelTokens

# agentStop for the main agent only: a subagent's stop carries an empty transcriptPath.
MAIN_TURN_END_HOOK = (
    'payload=$(cat); case "$payload" in *\'"transcriptPath":""\'*|*\'"transcriptPath": ""\'*) ;; '
    f'*) printf "%s" "$payload" | {{ {ENDED_HOOK}; }} ;; esac'
)


def repository_root(cwd: Path) -> Path:
    """The folder holding `.git` (a worktree's `.git` file counts) above `cwd`, or `cwd`."""
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder
    return cwd


def hook_file(spec: LaunchSpec) -> Path:
    """Where this session's hooks go: named by its fresh session id, so no file a repository
    holds can be in the way."""
    folder = repository_root(spec.cwd) / ".github" / "hooks"
    return folder / f"bmad-orchestrator-{spec.session_id}.json"


def hooks() -> dict[str, object]:
    """Turn ends and requests for a person, as files."""

    def command(line: str, matcher: str | None = None) -> list[dict[str, object]]:
        entry: dict[str, object] = {"type": "command", "bash": line, "timeoutSec": 10}
        if matcher:
            entry["matcher"] = matcher
        return [entry]

    return {
        "version": 1,
        "hooks": {
            "agentStop": command(MAIN_TURN_END_HOOK),
            "permissionRequest": command(SIGNAL_HOOK),
            "notification": command(SIGNAL_HOOK, "permission_prompt|elicitation_dialog"),
        },
    }


class Copilot:
    """Copilot CLI's hooks and usage."""

    name = "copilot"

    def launch(self, spec: LaunchSpec) -> Launch:
        """The session id of our choosing, and the hook file in the repository."""
        return Launch(
            args=["--session-id", spec.session_id],
            cwd_files={hook_file(spec): json.dumps(hooks(), indent=1)},
        )

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """Its hooks are not answered: a question shows as a signal only."""
        return None

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """Tokens per model from the session's `session.shutdown` event, if it was written."""
        events = home(query.env, "COPILOT_HOME", ".copilot") / "session-state"
        path = events / query.session_id / "events.jsonl"
        if not path.is_file():
            return None
        shutdown = None
        for event in json_lines(path):
            if event.get("type") == "session.shutdown" and isinstance(event.get("data"), dict):
                shutdown = event["data"]
        if shutdown is None:
            return None
        per_model: dict[str, ModelTokens] = {}
        metrics = shutdown.get("modelMetrics")
        for model, entry in metrics.items() if isinstance(metrics, dict) else ():
            usage = entry.get("usage") if isinstance(entry, dict) else None
            if not isinstance(usage, dict):
                continue
            per_model.setdefault(str(model), ModelTokens()).add(
                ModelTokens(
                    input=number(usage.get("inputTokens")),
                    output=number(usage.get("outputTokens")),
                    cache_read=number(usage.get("cacheReadTokens")),
                    cache_write=number(usage.get("cacheWriteTokens")),
                )
            )
        return UsageRecord(per_model, source=str(path))


DIALOGS = (
    Dialog(
        "folder-trust",
        re.compile(r"Confirm folder trust|Do you trust the files in this folder", re.IGNORECASE),
        ("Enter",),
    ),
)
READY = re.compile(r"^\s*[┃│|]?\s*❯|/ commands · \? help")


class CopilotStandIn(StandIn):
    """Copilot as the simulated agent plays it: `.github/hooks/` files, `session.shutdown`."""

    input_line = "❯ "
    idle_text = "/ commands · ? help"
    default_model = "gemini-2.5-pro"

    def trust_screen(self, cwd: Path) -> str | None:
        """Its folder-trust screen."""
        return (
            "Confirm folder trust\n\nDo you trust the files in this folder?\n\n❯ 1. Yes\n"
            "  2. Yes, and remember this folder for future sessions\n  3. No, exit (Esc)"
        )

    def end_turn(
        self, session: Session, prompt: str, message: str, transcript: Path | None
    ) -> None:
        """`agentStop` with the session's event log."""
        payload = {
            "sessionId": session.session_id,
            "timestamp": int(time.time() * 1000),
            "cwd": str(session.cwd),
            "transcriptPath": str(events_file(session.session_id)),
            "stopReason": "end_turn",
            "stop_hook_active": False,
        }
        for command in hook_commands(session.cwd, "agentStop"):
            run_hook(["bash", "-c", command], payload)

    def subagent_stop(self, session: Session) -> None:
        """Copilot fires `agentStop` for a subagent's turn too, with no transcript."""
        payload: dict[str, Any] = {"sessionId": session.session_id, "cwd": str(session.cwd)}
        payload["transcriptPath"] = ""
        payload |= {"stopReason": "end_turn", "timestamp": int(time.time() * 1000)}
        for command in hook_commands(session.cwd, "agentStop"):
            run_hook(["bash", "-c", command], payload)

    def ask(self, session: Session, question: str) -> bool:
        """`permissionRequest`."""
        payload = {
            "sessionId": session.session_id,
            "cwd": str(session.cwd),
            "toolName": "bash",
            "toolArgs": {"command": "rm -rf build"},
        }
        found = hook_commands(session.cwd, "permissionRequest")
        for command in found:
            run_hook(["bash", "-c", command], payload)
        return bool(found)

    def shutdown(self, session: Session) -> None:
        """The `session.shutdown` event with the session's model metrics (its only usage)."""
        if not session.totals:
            return
        metrics: dict[str, Any] = {}
        for tokens in session.totals:
            entry = metrics.setdefault(tokens.model, {"requests": {"count": 0}, "usage": {}})
            entry["requests"]["count"] += 1
            usage = entry["usage"]
            for key, value in (
                ("inputTokens", tokens.input),
                ("outputTokens", tokens.output),
                ("cacheReadTokens", tokens.cache_read),
                ("cacheWriteTokens", tokens.cache_write),
            ):
                usage[key] = usage.get(key, 0) + value
        model = session.totals[-1].model
        data = {"shutdownType": "routine", "modelMetrics": metrics, "currentModel": model}
        event = {"type": "session.shutdown", "data": data, "id": str(uuid.uuid4())}
        record = {**event, "timestamp": now_iso(), "parentId": None}
        append(events_file(session.session_id), record)

    def record_usage(self, session: Session, tokens: Tokens) -> Path | None:
        """Nothing yet: Copilot writes its totals when the session ends (`shutdown`)."""
        return None


def events_file(session_id: str) -> Path:
    """Copilot's event log of one session."""
    return data_home("COPILOT_HOME", ".copilot") / "session-state" / session_id / "events.jsonl"


def hook_commands(cwd: Path, event: str) -> list[str]:
    """Commands of `event` from the repository's `.github/hooks/*.json`."""
    root = repository_root(cwd)
    found = []
    for path in sorted((root / ".github" / "hooks").glob("*.json")):
        for entry in json.loads(path.read_text()).get("hooks", {}).get(event, []):
            if "bash" in entry:
                found.append(entry["bash"])
    return found


SPEC = CliSpec(
    "copilot",
    "copilot",
    Copilot(),
    ready=READY,
    dialogs=DIALOGS,
    prompt_flag=("-i",),
    activation="file",
    standin=CopilotStandIn(),
    session_files=(".github/hooks/bmad-orchestrator-*.json",),
    unattended=("--allow-all-tools",),
    permission_flags=("--allow-all-tools", "--allow-all", "--yolo"),
)
