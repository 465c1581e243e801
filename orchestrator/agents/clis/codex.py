"""OpenAI Codex CLI: the prompt as its positional argument, `notify` for turn ends, rollout usage.

Turn ends: Codex runs the `notify` program after each turn with one JSON argument
(`agent-turn-complete`); the orchestrator sets it for the one invocation with `-c notify=[...]`.
Questions: Codex reports permission requests only to hooks, and hooks need trust (a review screen,
or `--dangerously-bypass-hook-trust`, which would also run a repository's own unreviewed
hooks). So the attention hook is added only when the user passes that flag themselves; without
it a question shows as a stall. The hook-review screen is answered "continue without trusting".

Codex also runs `notify` for its title-generation thread, whose payload can arrive just before
or after the real turn's: the relay keeps only payloads of a thread that has a rollout file
(the title thread is ephemeral and has none), so the turn end and the usage are the session's.

Usage: the rollout `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread>.jsonl`, found by the
thread id the turn-end payload names (or, failing that, by working directory and start time,
only when exactly one rollout matches). Its last `token_count` has the session's totals;
`input_tokens` includes the cache reads and writes. Codex reports no dollars.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
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
    commands,
    data_home,
    now_iso,
    run_hook,
)
from orchestrator.agents.usage import ModelTokens

BYPASS_HOOK_TRUST = "--dangerously-bypass-hook-trust"
# `notify` appends the JSON payload as the last argument: "$1" of this constant script.
NOTIFY_SCRIPT = 'if [ -n "$BMAD_RELAY" ]; then "$BMAD_PYTHON" -I -S "$BMAD_RELAY" notify "$1"; fi'


def toml_string(text: str) -> str:
    """`text` as a TOML basic string."""
    return json.dumps(text)  # JSON string escapes are valid TOML basic-string escapes


def launch_args(flags: tuple[str, ...], cwd: Path) -> list[str]:
    """`-c` overrides: notify; the session's folder trusted for this invocation (0.171 asks
    "Trust this folder?" in a repository it has not seen, and answering writes the user's
    config); no app-server daemon (it would outlive the session); and the attention hook
    when the user bypasses hook trust."""
    program = ["/bin/sh", "-c", NOTIFY_SCRIPT, "bmad-notify"]
    args = ["-c", f"notify=[{', '.join(toml_string(part) for part in program)}]"]
    args += ["-c", f"projects={{{toml_string(str(cwd))}={{trust_level={toml_string('trusted')}}}}}"]
    args += ["-c", "features.daemon_auto_start=false"]
    if BYPASS_HOOK_TRUST in flags:
        hook = f'{{type = "command", command = {toml_string(SIGNAL_HOOK)}, timeout = 10}}'
        args += ["-c", f"hooks.PermissionRequest=[{{hooks = [{hook}]}}]"]
    return args


def rollouts(query: UsageQuery) -> list[Path]:
    """The session's rollout file(s): by thread id, else by cwd and start time."""
    hinted = (query.turn_end or {}).get("bmad_rollout")  # found by the relay, in the CLI's env
    if isinstance(hinted, str) and hinted and Path(hinted).is_file():
        return [Path(hinted)]
    root = home(query.env, "CODEX_HOME", ".codex") / "sessions"
    thread = (query.turn_end or {}).get("thread-id")
    if isinstance(thread, str) and re.fullmatch(r"[0-9a-fA-F-]{8,64}", thread):
        return sorted(root.glob(f"*/*/*/rollout-*-{thread}.jsonl"))
    started = query.started_ns / 1e9
    found = []
    for path in root.glob("*/*/*/rollout-*.jsonl"):
        if path.stat().st_mtime < started:
            continue
        meta = next(json_lines(path), {})
        payload = meta.get("payload") if isinstance(meta.get("payload"), dict) else {}
        assert isinstance(payload, dict)
        when = _timestamp(payload.get("timestamp"))
        if payload.get("cwd") == str(query.cwd) and when is not None and when >= started - 2:
            found.append(path)
    return found if len(found) == 1 else []  # two sessions in one folder: never guess


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Codex:
    """Codex CLI's notify program and usage."""

    name = "codex"

    def launch(self, spec: LaunchSpec) -> Launch:
        """`-c notify=...` (and the attention hook if hook trust is bypassed by the user)."""
        return Launch(args=launch_args(spec.flags, spec.cwd))

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """`notify` runs after the turn: nothing waits for an answer."""
        return None

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """The session's last token totals, split into fresh and cached input."""
        files = rollouts(query)
        if not files:
            return None
        totals: dict[str, Any] | None = None
        model = "unknown"
        for entry in json_lines(files[0]):
            payload = entry.get("payload")
            if not isinstance(payload, dict):
                continue
            if entry.get("type") == "turn_context" and isinstance(payload.get("model"), str):
                model = payload["model"]
            info = payload.get("info") if payload.get("type") == "token_count" else None
            if isinstance(info, dict) and isinstance(info.get("total_token_usage"), dict):
                totals = info["total_token_usage"]
        if totals is None:
            return UsageRecord({}, source=str(files[0]))
        cached = number(totals.get("cached_input_tokens"))
        written = number(totals.get("cache_write_input_tokens"))
        tokens = ModelTokens(  # `input_tokens` holds the cache reads and writes too
            input=max(0, number(totals.get("input_tokens")) - cached - written),
            output=number(totals.get("output_tokens")),
            cache_read=cached,
            cache_write=written,
        )
        return UsageRecord({model: tokens}, source=str(files[0]))


DIALOGS = (
    Dialog(  # 0.171 ("Trust this folder?") and earlier wordings; launch trusts the folder first
        "directory-trust",
        re.compile(
            r"Trust this folder\?|Do you trust the contents of this directory"
            r"|allow Codex to work in this folder"
        ),
        ("Enter",),
    ),
    Dialog("update", re.compile(r"Update available!"), ("2", "Enter")),  # 2: Skip
    Dialog("hooks-review", re.compile(r"[Hh]ooks? need review"), ("3", "Enter")),  # no trust
)
# Idle: the hint line under the input box (it goes while text is typed); `›` alone is no sign,
# menu entries ("› 1. Trust and continue") and echoed prompts start with it too.
READY = re.compile(r"\? for shortcuts")
BUSY = re.compile(r"esc to interrupt")


class CodexStandIn(StandIn):
    """Codex as the simulated agent plays it: `notify` and `-c` hooks, the rollout."""

    input_line = "› "
    idle_text = "? for shortcuts"
    default_model = "gpt-5-codex"

    def trust_screen(self, cwd: Path) -> str | None:
        """0.171's folder-trust screen (shown in a repository it has not seen)."""
        return (
            f"  Folder access\n  {cwd}\n\n  Trust this folder? Codex can read, edit, and run "
            "files here, subject to your permission settings.\n\n› 1. Trust and continue\n"
            "  2. Back to Agent Command Center\n\n  enter continue · esc back"
        )

    def end_turn(
        self, session: Session, prompt: str, message: str, transcript: Path | None
    ) -> None:
        """The `notify` program of `-c notify=[...]`, the payload as its last argument."""
        payload = {
            "type": "agent-turn-complete",
            "thread-id": session.thread_id,
            "turn-id": str(session.turns),
            "cwd": str(session.cwd),
            "client": "codex-tui",
            "input-messages": [prompt[:200]],
            "last-assistant-message": message,
        }
        notify = overrides(session).get("notify")
        if isinstance(notify, list) and notify:
            run_hook([str(part) for part in notify], payload, as_argument=True)

    def ask(self, session: Session, question: str) -> bool:
        """The `PermissionRequest` hook, which runs only with hook trust bypassed."""
        if not session.args.dangerously_bypass_hook_trust:
            return False
        payload = {
            "session_id": session.thread_id,
            "hook_event_name": "PermissionRequest",
            "cwd": str(session.cwd),
            "tool_name": "Bash",
            "tool_input": {"command": "rm -rf build"},
        }
        found = commands(overrides(session).get("hooks", {}).get("PermissionRequest", []))
        for command in found:
            run_hook(["/bin/sh", "-c", command], payload)
        return bool(found)

    def record_usage(self, session: Session, tokens: Tokens) -> Path | None:
        """The rollout, with the session's totals after the last turn."""
        turns, now = session.totals, datetime.now()
        folder = data_home("CODEX_HOME", ".codex") / "sessions" / now.strftime("%Y/%m/%d")
        existing = sorted(folder.glob(f"rollout-*-{session.thread_id}.jsonl"))
        name = f"rollout-{now:%Y-%m-%dT%H-%M-%S}-{session.thread_id}.jsonl"
        path = existing[0] if existing else folder / name
        if not existing:
            meta = {"id": session.thread_id, "timestamp": now_iso(), "cwd": str(session.cwd)}
            append(path, {"timestamp": now_iso(), "type": "session_meta", "payload": meta})
        total = {
            "input_tokens": sum(t.input + t.cache_read for t in turns),
            "cached_input_tokens": sum(t.cache_read for t in turns),
            "output_tokens": sum(t.output for t in turns),
            "reasoning_output_tokens": 0,
            "total_tokens": sum(t.input + t.cache_read + t.output for t in turns),
        }
        info = {"total_token_usage": total, "last_token_usage": total}
        context = {"cwd": str(session.cwd), "model": turns[-1].model}
        count = {"type": "token_count", "info": info}
        append(
            path,
            {"timestamp": now_iso(), "type": "turn_context", "payload": context},
            {"timestamp": now_iso(), "type": "event_msg", "payload": count},
        )
        return path


def overrides(session: Session) -> dict[str, Any]:
    """Codex's `-c key=value` overrides, values parsed as TOML (as Codex does)."""
    config: dict[str, Any] = {}
    for override in session.args.overrides:
        key, _, value = override.partition("=")
        parsed = tomllib.loads(f"value = {value}")["value"]
        target = config
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = parsed
    return config


SPEC = CliSpec(
    "codex",
    "codex",
    Codex(),
    ready=READY,
    busy=BUSY,
    dialogs=DIALOGS,
    activation="mention",
    tested=("0.171.0", "0.171.0"),
    standin=CodexStandIn(),
    unattended=("--dangerously-bypass-approvals-and-sandbox",),
    permission_flags=(
        "--dangerously-bypass-approvals-and-sandbox",
        "--yolo",
        "-a",
        "--ask-for-approval",
        "--full-auto",
    ),
)
