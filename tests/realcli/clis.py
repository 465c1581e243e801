"""The real agent CLIs from npm, pinned, and how each is pointed at the scripted model server.

Each CLI runs with a private HOME (and its own data folders under it), so nothing of the user's
is read or written, and nothing leaves 127.0.0.1 but the npm install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The versions the compatibility table (docs/guide.md) names; `validate` warns outside them.
PACKAGES = {
    "claude": ("@anthropic-ai/claude-code", "2.1.197", "claude"),
    "codex": ("@openai/codex", "0.171.0", "codex"),
    "opencode": ("opencode-ai", "1.18.33", "opencode"),
    "gemini": ("@google/gemini-cli", "0.61.0", "gemini"),
}


@dataclass(frozen=True)
class RealCli:
    """One installed CLI: its name, version and binary."""

    name: str
    version: str
    binary: Path


def install(name: str, folder: Path) -> RealCli:
    """`npm install` the pinned package into `folder` (a registry hiccup gets two more tries)."""
    package, version, binary = PACKAGES[name]
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm")
    target = folder / name
    output = ""
    for _ in range(3):
        result = subprocess.run(
            [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund",
             f"{package}@{version}"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        output = result.stdout + result.stderr
        path = target / "node_modules" / ".bin" / binary
        if result.returncode == 0 and path.exists():
            return RealCli(name, version, path)
    raise RuntimeError(f"npm install {package}@{version} failed: {output[-2000:]}")


def claude_env(home: Path, url: str) -> dict[str, str]:
    """Claude Code on the scripted server: onboarding done, the dummy key approved."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
            }
        )
    )
    return {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "dummy",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def with_env(env: dict[str, str], argv: list[str]) -> list[str]:
    """`argv` run with `env` added (through env(1): argv only, no shell)."""
    return ["env", *(f"{key}={value}" for key, value in env.items()), *argv]
