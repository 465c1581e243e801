"""`validate` warns when an agent CLI's installed version is outside the range the real-CLI
tests passed with; a real `--version` program is run, with a deadline."""

from __future__ import annotations

import stat
from pathlib import Path

from orchestrator.agents.clis import CLAUDE, GEMINI
from orchestrator.app.preflight import cli_version_warning


def fake_cli(tmp_path: Path, output: str) -> str:
    script = tmp_path / "cli"
    script.write_text(f"#!/bin/sh\necho '{output}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_the_tested_version_passes_and_others_are_named(tmp_path: Path) -> None:
    assert CLAUDE.tested is not None and GEMINI.tested is not None
    assert cli_version_warning(("claude", fake_cli(tmp_path, "2.1.197 (Claude Code)"))) is None
    warning = cli_version_warning(("claude", fake_cli(tmp_path, "2.3.0 (Claude Code)")))
    assert warning is not None and "claude 2.3.0" in warning and "2.1.197" in warning
    assert "compatibility table" in warning


def test_an_unreadable_or_missing_version_is_said(tmp_path: Path) -> None:
    odd = cli_version_warning(("gemini", fake_cli(tmp_path, "nightly")))
    assert odd is not None and "could not read its version" in odd
    gone = cli_version_warning(("gemini", str(tmp_path / "missing")))
    assert gone is not None and "version is unknown" in gone
