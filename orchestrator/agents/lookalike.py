"""How the simulated agent passes for a real CLI (`--like claude|codex|gemini|copilot|opencode`).

It takes that CLI's argv (its prompt option, `--session-id`, Codex's `-c` overrides, opencode's
`--agent`), shows its input line and trust screen, signals turn ends and questions through that
CLI's own mechanism with the payload shape the CLI sends (Claude's `--settings` hooks, Codex's
`notify` program and `-c` hooks, Gemini's system-settings hooks, Copilot's `.github/hooks/`
files, opencode's plugin run by node), and with `--usage IN:OUT:CACHE_READ:CACHE_WRITE[:MODEL]`
records each turn's tokens where and as that CLI does. So the orchestrator's side of every CLI
runs for real in tests; only the model is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.agents import usage_records as records

LIKES = ("claude", "codex", "gemini", "copilot", "opencode")
INPUT_LINES = {"claude": "❯ ", "codex": "› ", "gemini": "> ", "copilot": "❯ ", "opencode": "> "}
# What each CLI shows idle besides its input line (the profiles' ready patterns look for it).
IDLE_TEXT = {
    "codex": "? for shortcuts",
    "gemini": "  Type your message or @path/to/file",
    "copilot": "/ commands · ? help",
    "opencode": 'Ask anything... "Fix a TODO in the codebase"   ctrl+p commands',
}
TRUST_SCREENS = {
    "codex": (
        "> You are in {cwd}\n\n  Do you trust the contents of this directory? Working with "
        "untrusted contents comes with higher risk of prompt injection.\n\n"
        "› 1. Yes, continue\n  2. No, quit\n\n  Press enter to continue"
    ),
    "gemini": (
        "Do you trust the files in this folder?\n\n● 1. Trust folder ({cwd})\n"
        "  2. Trust parent folder\n  3. Don't trust"
    ),
    "copilot": (
        "Confirm folder trust\n\nDo you trust the files in this folder?\n\n❯ 1. Yes\n"
        "  2. Yes, and remember this folder for future sessions\n  3. No, exit (Esc)"
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every CLI the simulated agent can pass for."""
    parser.add_argument("--like", choices=LIKES, help="pass for this agent CLI")
    parser.add_argument("--session-id", help="(claude, gemini, copilot) the session id")
    parser.add_argument("-c", dest="overrides", action="append", default=[], help="(codex)")
    parser.add_argument("-i", dest="prompt_option", help="(gemini, copilot) the prompt")
    parser.add_argument("--prompt", dest="prompt_option", help="(opencode) the prompt")
    parser.add_argument("--agent", help="(opencode) the agent")
    parser.add_argument("--dangerously-bypass-hook-trust", action="store_true", help="(codex)")
    parser.add_argument(
        "--usage",
        metavar="IN:OUT:CR:CW[:MODEL]",
        help="tokens to record per turn, where and as the CLI of --like records them",
    )


def _run(argv: list[str], payload: dict[str, Any], *, as_argument: bool = False) -> str:
    """Run a hook as the CLI does: JSON on stdin (or as the last argument); its stdout."""
    data = json.dumps(payload)
    done = subprocess.run(
        [*argv, data] if as_argument else argv,
        input=None if as_argument else data.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.stdout.decode(errors="replace")


@dataclass
class Lookalike:
    """One simulated session passing for the CLI `like`."""

    like: str
    args: argparse.Namespace
    cwd: Path = field(default_factory=Path.cwd)
    thread_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    turns: int = 0
    totals: list[records.Tokens] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session_id = self.args.session_id or self.thread_id
        if self.like == "copilot":  # its usage reaches disk only when the session ends
            for sig in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, self._shutdown)

    # --- screens --------------------------------------------------------------------------

    def trust_screen(self) -> str | None:
        """The CLI's trust question, if it has one."""
        screen = TRUST_SCREENS.get(self.like)
        return screen.format(cwd=self.cwd) if screen else None

    def idle_text(self) -> str | None:
        """What the CLI shows while idle besides its input line."""
        return IDLE_TEXT.get(self.like)

    # --- signals --------------------------------------------------------------------------

    def end_turn(self, prompt: str, message: str, *, signal: bool = True) -> None:
        """Record the turn's usage, then signal its end as the CLI does."""
        transcript = self.record_usage()
        payload: dict[str, Any]
        if not signal:
            return
        if self.like == "codex":
            payload = {
                "type": "agent-turn-complete",
                "thread-id": self.thread_id,
                "turn-id": str(self.turns),
                "cwd": str(self.cwd),
                "client": "codex-tui",
                "input-messages": [prompt[:200]],
                "last-assistant-message": message,
            }
            notify = self.codex_config().get("notify")
            if isinstance(notify, list) and notify:
                _run([str(part) for part in notify], payload, as_argument=True)
        elif self.like == "gemini":
            payload = {
                "session_id": self.session_id,
                "transcript_path": str(transcript or ""),
                "cwd": str(self.cwd),
                "hook_event_name": "AfterAgent",
                "timestamp": records.now_iso(),
                "prompt": prompt[:200],
                "prompt_response": message,
                "stop_hook_active": False,
            }
            for command in self.gemini_hooks("AfterAgent"):
                out = _run(["/bin/sh", "-c", command], payload).strip()
                if out:
                    json.loads(out)  # Gemini parses a hook's stdout: it must be JSON
        elif self.like == "copilot":
            payload = {
                "sessionId": self.session_id,
                "timestamp": int(time.time() * 1000),
                "cwd": str(self.cwd),
                "transcriptPath": str(records.copilot_events(self.session_id)),
                "stopReason": "end_turn",
                "stop_hook_active": False,
            }
            for command in self.copilot_hooks("agentStop"):
                _run(["bash", "-c", command], payload)
        elif self.like == "opencode":
            self.opencode_events(
                {"type": "session.idle", "properties": {"sessionID": self.session_id}}
            )

    def subagent_stop(self) -> None:
        """Copilot fires `agentStop` for a subagent's turn too, with no transcript."""
        payload = {"sessionId": self.session_id, "cwd": str(self.cwd), "transcriptPath": ""}
        payload |= {"stopReason": "end_turn", "timestamp": int(time.time() * 1000)}
        for command in self.copilot_hooks("agentStop"):
            _run(["bash", "-c", command], payload)

    def ask(self, question: str) -> bool:
        """Ask for a person through the CLI's mechanism; False when it has none configured."""
        asked = False
        if self.like == "codex":
            payload = {
                "session_id": self.thread_id,
                "hook_event_name": "PermissionRequest",
                "cwd": str(self.cwd),
                "tool_name": "Bash",
                "tool_input": {"command": "rm -rf build"},
            }
            for command in self.codex_hooks("PermissionRequest"):
                _run(["/bin/sh", "-c", command], payload)
                asked = True
        elif self.like == "gemini":
            payload = {
                "session_id": self.session_id,
                "hook_event_name": "Notification",
                "notification_type": "ToolPermission",
                "message": f"Tool Shell requires execution: {question}",
                "details": {"type": "exec", "title": "Shell", "command": "rm -rf build"},
                "cwd": str(self.cwd),
                "timestamp": records.now_iso(),
            }
            for command in self.gemini_hooks("Notification"):
                _run(["/bin/sh", "-c", command], payload)
                asked = True
        elif self.like == "copilot":
            payload = {
                "sessionId": self.session_id,
                "cwd": str(self.cwd),
                "toolName": "bash",
                "toolArgs": {"command": "rm -rf build"},
            }
            for command in self.copilot_hooks("permissionRequest"):
                _run(["bash", "-c", command], payload)
                asked = True
        elif self.like == "opencode":
            event = {
                "type": "permission.asked",
                "properties": {
                    "id": "per_1",
                    "sessionID": self.session_id,
                    "permission": "bash",
                    "patterns": ["rm -rf build"],
                },
            }
            asked = self.opencode_events(event)
        return asked

    # --- each CLI's configuration ---------------------------------------------------------

    def codex_config(self) -> dict[str, Any]:
        """Codex's `-c key=value` overrides, values parsed as TOML (as Codex does)."""
        config: dict[str, Any] = {}
        for override in self.args.overrides:
            key, _, value = override.partition("=")
            parsed = tomllib.loads(f"value = {value}")["value"]
            target = config
            *parents, last = key.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = parsed
        return config

    def codex_hooks(self, event: str) -> list[str]:
        """Commands of `event` from `-c hooks...`, which run only with hook trust bypassed."""
        if not self.args.dangerously_bypass_hook_trust:
            return []
        entries = self.codex_config().get("hooks", {}).get(event, [])
        return [h["command"] for e in entries for h in e.get("hooks", []) if "command" in h]

    def gemini_hooks(self, event: str) -> list[str]:
        """Commands of `event` from the system settings file Gemini is pointed at."""
        path = os.environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH")
        if not path or os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") != "true":
            return []  # an untrusted folder runs no hook at all
        entries = json.loads(Path(path).read_text()).get("hooks", {}).get(event, [])
        return [h["command"] for e in entries for h in e.get("hooks", []) if "command" in h]

    def copilot_hooks(self, event: str) -> list[str]:
        """Commands of `event` from the repository's `.github/hooks/*.json`."""
        root = next((p for p in (self.cwd, *self.cwd.parents) if (p / ".git").exists()), self.cwd)
        commands = []
        for path in sorted((root / ".github" / "hooks").glob("*.json")):
            config = json.loads(path.read_text())
            for entry in config.get("hooks", {}).get(event, []):
                if "bash" in entry:
                    commands.append(entry["bash"])
        return commands

    def opencode_events(self, *events: dict[str, Any]) -> bool:
        """Hand events to the plugins of `OPENCODE_CONFIG_CONTENT` (run by node, as ES modules)."""
        config = json.loads(os.environ.get("OPENCODE_CONFIG_CONTENT") or "{}")
        plugins = [p for p in config.get("plugin", []) if str(p).startswith("file://")]
        driver = (
            "const m = await import(process.argv[1]);"
            "for (const f of Object.values(m)) { const h = await f({});"
            " for (const e of JSON.parse(process.argv[2])) await h.event({ event: e }); }"
        )
        for plugin in plugins:
            subprocess.run(
                ["node", "--input-type=module", "-e", driver, plugin, json.dumps(events)],
                check=True,
                timeout=30,
            )
        return bool(plugins)

    # --- usage records --------------------------------------------------------------------

    def record_usage(self) -> Path | None:
        """Write this turn's tokens where the CLI keeps them; returns its transcript, if any."""
        self.turns += 1
        if not self.args.usage:
            return None
        tokens = records.Tokens.parse(self.args.usage, self.like)
        self.totals.append(tokens)
        if self.like == "claude":
            return records.claude(self.cwd, self.session_id, self.turns, tokens)
        if self.like == "codex":
            return records.codex(self.cwd, self.thread_id, self.totals)
        if self.like == "gemini":
            return records.gemini(self.cwd, self.session_id, self.turns, tokens)
        if self.like == "opencode":
            self.opencode_events(*records.opencode(self.session_id, self.turns, tokens))
        return None

    def _shutdown(self, signum: int, frame: object) -> None:
        """Copilot ending: the session's totals go to its event log, then it exits."""
        if self.totals:
            records.copilot_shutdown(self.session_id, self.totals)
        sys.exit(0)
