"""Claude Code: `--settings` hooks for the one invocation, `--session-id`, transcript usage.

Hooks: `Stop` when the main agent finished responding (`StopFailure` on an API error);
`PermissionRequest` and `PreToolUse` for `AskUserQuestion` the moment Claude needs a person
(even bypass mode does not auto-approve AskUserQuestion); `Notification` of type
`permission_prompt` is the slower (~6 s) fallback. Hooks given with `--settings` merge with the
user's own, which stay untouched.

Usage: the session's transcript, `{CLAUDE_CONFIG_DIR or ~/.claude}/projects/<cwd, every
non-alphanumeric character a dash>/<session id>.jsonl`, plus its subagents' transcripts. Each
assistant message is written several times while it streams, so entries are counted once per
`message.id` and `requestId` (as ccusage does); the `<synthetic>` model is no model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import (
    ATTENTION_HOOK,
    ENDED_HOOK,
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
    data_home,
    now_iso,
)
from orchestrator.agents.usage import ModelTokens

HOOK_TIMEOUT = 60  # seconds Claude gives a hook; the relay answers `{}` well before that


def hook_settings() -> dict[str, object]:
    """The `--settings` file: turn ends and questions go through the relay, which may answer
    (a `Stop` blocked with a nudge, an `AskUserQuestion` denied with what to do instead)."""

    def command(line: str) -> list[dict[str, object]]:
        return [{"type": "command", "command": line, "timeout": HOOK_TIMEOUT}]

    return {
        "hooks": {
            "Stop": [{"hooks": command(TURN_END_HOOK)}],
            "StopFailure": [{"hooks": command(ENDED_HOOK)}],
            "PreToolUse": [{"matcher": "AskUserQuestion", "hooks": command(ATTENTION_HOOK)}],
            "PermissionRequest": [{"hooks": command(SIGNAL_HOOK)}],
            "Notification": [{"matcher": "permission_prompt", "hooks": command(SIGNAL_HOOK)}],
            "UserPromptSubmit": [{"hooks": command(SUBMITTED_HOOK)}],
        }
    }


def steer(payload: Mapping[str, Any], text: str) -> str | None:
    """`Stop` blocked with the nudge as its reason (the turn goes on); `AskUserQuestion` denied
    with `text` as the reason the model reads; nothing else can be steered."""
    event = payload.get("hook_event_name")
    if event == "Stop":
        return json.dumps({"decision": "block", "reason": text})
    if event == "PreToolUse":
        return json.dumps(
            {
                "hookSpecificOutput": {
                    "hookEventName": "PreToolUse",
                    "permissionDecision": "deny",
                    "permissionDecisionReason": text,
                }
            }
        )
    return None


def project_folder(cwd: Path) -> str:
    """The transcript folder's name for a working directory."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(cwd))


def transcripts(query: UsageQuery) -> list[Path]:
    """The session's transcript and its subagents' (empty when none is found)."""
    root = home(query.env, "CLAUDE_CONFIG_DIR", ".claude") / "projects"
    hinted = (query.turn_end or {}).get("transcript_path")
    candidates = [Path(hinted)] if isinstance(hinted, str) and hinted else []
    candidates.append(root / project_folder(query.cwd) / f"{query.session_id}.jsonl")
    main = next((path for path in candidates if path.is_file()), None)
    if main is None:  # a long folder name is truncated and hashed: find the session id
        main = next(iter(sorted(root.glob(f"*/{query.session_id}.jsonl"))), None)
    if main is None:
        return []
    return [main, *sorted((main.parent / main.stem / "subagents").glob("*.jsonl"))]


class Claude:
    """Claude Code's hooks and usage."""

    name = "claude"

    def launch(self, spec: LaunchSpec) -> Launch:
        """`--settings` with the hooks, and the session id of our choosing."""
        settings = spec.run_dir / f"{spec.name}.settings.json"
        return Launch(
            args=["--settings", str(settings), "--session-id", spec.session_id],
            files={settings: json.dumps(hook_settings(), indent=1)},
        )

    def steer(self, payload: Mapping[str, Any], text: str) -> str | None:
        """See `steer`."""
        return steer(payload, text)

    def read_usage(self, query: UsageQuery) -> UsageRecord | None:
        """Tokens per model from the transcripts, each message counted once."""
        files = transcripts(query)
        if not files:
            return None
        per_model: dict[str, ModelTokens] = {}
        seen: set[str] = set()
        for path in files:
            for entry in json_lines(path):
                message = entry.get("message")
                if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
                    continue
                model = message.get("model")
                if not isinstance(model, str) or model == "<synthetic>":
                    continue
                key = f"{message.get('id')}:{entry.get('requestId')}"
                if message.get("id") and key in seen:
                    continue
                seen.add(key)
                usage = message["usage"]
                per_model.setdefault(model, ModelTokens()).add(
                    ModelTokens(
                        input=number(usage.get("input_tokens")),
                        output=number(usage.get("output_tokens")),
                        cache_read=number(usage.get("cache_read_input_tokens")),
                        cache_write=number(usage.get("cache_creation_input_tokens")),
                    )
                )
        return UsageRecord(per_model, source=str(files[0]))


DIALOGS = (
    Dialog(
        "workspace-trust",
        re.compile(
            r"Do you trust the files in this folder|Yes, I trust this folder"
            r"|Is this a project you created or one you trust"
        ),
        ("Enter",),
    ),
    # Its default choice is "No, exit", hence Down first.
    Dialog("bypass-permissions", re.compile(r"Bypass Permissions mode"), ("Down", "Enter")),
    Dialog("new-mcp-server", re.compile(r"new MCP server", re.IGNORECASE), ("Enter",)),
)
READY = re.compile(r"^\s*[│|]?\s*[>❯]\s")
# Claude Code scrubs none of these itself; inherited, they make a nested session save no
# transcript (CLAUDE_CODE_CHILD_SESSION) or refuse to start (CLAUDECODE, older versions).
NESTING_VARIABLES = ("CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT", "CLAUDE_CODE_CHILD_SESSION")


class ClaudeStandIn(StandIn):
    """Claude as the simulated agent plays it: its hooks run from `--settings` in the simulated
    agent itself (the default shape); the transcript written as Claude writes it."""

    input_line = "❯ "
    default_model = "claude-sonnet-4-5-20250929"

    def record_usage(self, session: Session, tokens: Tokens) -> Path | None:
        """One assistant message in the session's transcript, written twice as it streams."""
        folder = project_folder(session.cwd)
        root = data_home("CLAUDE_CONFIG_DIR", ".claude") / "projects" / folder
        path = root / f"{session.session_id}.jsonl"
        usage = {
            "input_tokens": tokens.input,
            "output_tokens": tokens.output,
            "cache_read_input_tokens": tokens.cache_read,
            "cache_creation_input_tokens": tokens.cache_write,
        }
        entry = {
            "type": "assistant",
            "sessionId": session.session_id,
            "requestId": f"req_{session.turns}",
            "timestamp": now_iso(),
            "message": {"id": f"msg_{session.turns}", "model": tokens.model, "usage": usage},
        }
        append(path, entry, entry)
        return path


SPEC = CliSpec(
    "claude",
    "claude",
    Claude(),
    ready=READY,
    dialogs=DIALOGS,
    submit_signal=True,
    unset=NESTING_VARIABLES,
    tested=("2.1.197", "2.1.197"),
    standin=ClaudeStandIn(),
    unattended=("--permission-mode", "bypassPermissions"),
    permission_flags=("--permission-mode", "--dangerously-skip-permissions"),
)
