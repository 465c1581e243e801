"""What the benchmarks share: a scratch BMad project, a minimal agent, one measured run.

The agent is a shell script, not the simulated agent: it does each stage's file work after
`--work` seconds and signals its turn end, so the figures are the orchestrator's, not an agent's
start-up. Every run uses a private tmux socket whose server the benchmark starts (and so can
measure) and kills.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.tmux.names import socket_path

AGENT = r"""
sleep "$BENCH_WORK"
id=$BMAD_STORY_ID
story="docs/stories/$id.story.md"
case $BMAD_STAGE in
  sm) mkdir -p docs/stories
      text='# Story %s: Bench\n\n## Status\n\nDraft\n\n## Story\n\nAs a user.\n'
      printf "$text" "$id" > "$story" ;;
  po) mkdir -p docs/qa/assessments
      validation="docs/qa/assessments/$id-po-validation-$(date +%Y%m%d).md"
      printf '# PO validation\n\nDecision: GO\n' > "$validation" ;;
  dev) sed -i 's/^Approved$/Ready for Review/' "$story" ;;
  qa) mkdir -p docs/qa/gates
      printf 'schema: 1\nstory: "%s"\ngate: PASS\n' "$id" > "docs/qa/gates/$id-bench.yml" ;;
esac
printf '{}' > "$BMAD_TURN_END_FILE"
exec sleep 100000
"""
CORE_CONFIG = "devStoryLocation: docs/stories\nqa:\n  qaLocation: docs/qa\nslashPrefix: BMad\n"


def project(folder: Path, stories: int, parallel: int, socket: str, work: float) -> Path:
    """A BMad v4 project with an epic of `stories` independent stories; its epic.yaml."""
    (folder / ".bmad-core").mkdir(parents=True)
    (folder / ".bmad-core" / "core-config.yaml").write_text(CORE_CONFIG)
    (folder / ".bmad-core" / "install-manifest.yaml").write_text("version: 4.44.3\n")
    epic = {
        "project": ".",
        "stories": [f"1.{n}" for n in range(1, stories + 1)],
        "parallel": parallel,
        "agent": {"profile": "generic", "command": ["sh", "-c", AGENT, "bench-agent"]},
        "stages": {stage: {"timeout": "10m"} for stage in ("sm", "po", "dev", "qa")},
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    path = folder / "epic.yaml"
    path.write_text(yaml.safe_dump(epic, sort_keys=False))
    os.environ["BENCH_WORK"] = str(work)
    return path


@dataclass
class Measured:
    """One orchestrator run, from outside."""

    wall: float
    cpu: float  # the orchestrator's user + system seconds, its tmux client calls included
    tmux_cpu: float  # the tmux server's
    children_cpu: float  # the server's children: each session's log capture and agent shell
    peak_rss_mb: float
    exit_code: int


def _server_cpu(pid: int) -> tuple[float, float]:
    """(the tmux server's own CPU seconds, its reaped children's: log capture, agent shells)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks


def run(epic: Path, socket: str, *extra: str, profile: Path | None = None) -> Measured:
    """Run the epic once with a tmux server of the benchmark's own; measure it from outside."""
    keep = ["tmux", "-L", socket, "new-session", "-d", "-s", "bench-keepalive", "sleep", "100000"]
    subprocess.run(keep, check=True)
    pid = ["tmux", "-L", socket, "display-message", "-p", "#{pid}"]
    server = int(subprocess.run(pid, capture_output=True, text=True, check=True).stdout)
    before = _server_cpu(server)
    command = [sys.executable, "-m", "orchestrator", str(epic), "--plain", *extra]
    if profile is not None:
        py_spy = shutil.which("py-spy")
        if py_spy is None:
            raise SystemExit("py-spy is not installed: pip install py-spy")
        command = [py_spy, "record", "--threads", "--gil", "-r", "500", "-f", "raw",
                   "-o", str(profile), "--", *command]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    after = _server_cpu(server)
    subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
    socket_path(socket).unlink(missing_ok=True)  # tmux leaves its socket file behind
    return Measured(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        tmux_cpu=after[0] - before[0],
        children_cpu=after[1] - before[1],
        peak_rss_mb=usage.ru_maxrss / 1024,
        exit_code=os.waitstatus_to_exitcode(status),
    )


def socket_name() -> str:
    """A private tmux socket for one benchmark."""
    return f"bmad-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def self_cpu() -> float:
    """This process's CPU seconds so far (for floors measured in-process)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
