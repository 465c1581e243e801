"""A scripted model that does each BMad v4 stage's file work as real agents do, through the CLI's
own tools, with misbehaviour a test can ask for.

It recognises the stage from the orchestrator's task text in the conversation and writes what
the v4.44.3 templates ask for (story-tmpl.yaml's sections, qa-gate-tmpl.yaml's `gate:`, the PO
report the orchestrator asks for), in the CLI's tool calls. The model is stateless per request,
as a real one is: where it is in a stage comes from the conversation (how many answers it gave),
except how often a stage was started, which the brain counts to misbehave on the first start only.
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.realcli.model import Call, Reply, Turn, Usage

STAGE_MARKS = {
    "sm": re.compile(r"Draft story (\S+) now and write it to (\S+) with Status Draft"),
    "po": re.compile(r"\*validate-story-draft (\S+).*?validation report as (\S+?),", re.S),
    "dev": re.compile(r"\*(?:develop-story|review-qa) (\S+)"),
    "qa": re.compile(r"\*review (\S+)"),
}
# Each answer of a stage, in order: "idle" (end the turn without output), "ask" (the CLI's
# question tool), "crash" (kill the CLI), "work" (the stage's writes, after reading the story
# where it is edited), then "done" (end the turn).
Plan = list[str]
# The CLI dies: the nearest ancestor of the tool's shell that is the CLI gets SIGKILL. A script,
# so the command the model sends is plain (Gemini refuses command substitution).
CRASH_SCRIPT = """import os, signal
pid = os.getppid()
while pid > 1:
    with open(f"/proc/{pid}/comm") as handle:
        name = handle.read().strip()
    if name in ("claude", "codex", "opencode", "node", "gemini", ".opencode", "MainThread"):
        os.kill(pid, signal.SIGKILL)
        break
    with open(f"/proc/{pid}/stat") as handle:
        pid = int(handle.read().rsplit(")", 1)[1].split()[1])
"""


def which_stage(text: str) -> tuple[str, re.Match[str]] | None:
    """The stage a conversation is about, from the orchestrator's task text in it."""
    for stage, pattern in STAGE_MARKS.items():
        found = pattern.search(text)
        if found:
            return stage, found
    return None


def story_text(story_id: str, title: str) -> str:
    """A story as the SM writes it from story-tmpl.yaml."""
    return f"""# Story {story_id}: {title}

## Status
Draft

## Story
**As a** user,
**I want** {title.lower()},
**so that** I can see the project greet me.

## Acceptance Criteria
1. Running `python -m hello` prints `Hello, world`.
2. A unit test covers the greeting.

## Tasks / Subtasks
- [ ] Add `hello/__main__.py` printing the greeting (AC: 1)
- [ ] Add `tests/test_hello.py` (AC: 2)

## Dev Notes
No previous story. Source tree: `hello/` is new.

### Testing
pytest, tests beside the package.

## Change Log
| Date | Version | Description | Author |
|------|---------|-------------|--------|
| {today()} | 0.1 | Initial draft | Bob (SM) |

## Dev Agent Record
### Agent Model Used

### Debug Log References

### Completion Notes List

### File List

## QA Results
"""


def today() -> str:
    """The date as the agents write it."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def developed(text: str) -> str:
    """The story after `*develop-story`: tasks ticked, record filled, Status Ready for Review."""
    text = text.replace("- [ ]", "- [x]")
    text = re.sub(r"(## Status\n)[^\n]*", r"\1Ready for Review", text, count=1)
    return text.replace(
        "### File List\n",
        "### File List\n- hello/__main__.py (new)\n- tests/test_hello.py (new)\n",
    ).replace("### Agent Model Used\n", "### Agent Model Used\nscripted-model\n")


def reviewed(text: str, story_id: str, slug: str) -> str:
    """The story with its QA Results entry (the `Gate:` line review-story writes)."""
    return text.rstrip("\n").removesuffix("## QA Results").rstrip("\n") + (
        f"\n\n## QA Results\n\n### Review Date: {today()}\n\n"
        "### Reviewed By: Quinn (Test Architect)\n\n"
        "All acceptance criteria are met and tested.\n\n### Gate Status\n\n"
        f"Gate: PASS → docs/qa/gates/{story_id}-{slug}.yml\n"
    )


@dataclass
class BmadBrain:
    """The scripted BMad agents of one project; `plans` per stage say how each start behaves."""

    project: Path
    plans: dict[str, list[Plan]] = field(default_factory=dict)  # stage -> plan per start
    usage: Usage = field(default_factory=lambda: Usage(1000, 200, 5000, 300))
    starts: Counter[str] = field(default_factory=Counter)
    seen: list[tuple[str, int, str]] = field(default_factory=list)  # (stage, round, last user)
    tool_call: Callable[[str], Call] | None = None  # how the CLI's ask is called, if it differs
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, stage: str, start: int) -> Plan:
        """What the `start`-th start (1-based) of `stage` does."""
        plans = self.plans.get(stage, [])
        return plans[start - 1] if start <= len(plans) else ["work"]

    def reply(self, turn: Turn) -> Reply:
        """The next answer in the stage's plan."""
        found = which_stage("\n".join(turn.user_texts))
        if found is None:
            return Reply(text="I have nothing to do.", usage=self.usage)
        stage, match = found
        with self.lock:
            if turn.rounds == 0:
                self.starts[stage] += 1
            start = max(1, self.starts[stage])
            self.seen.append((stage, turn.rounds, turn.last_user))
        steps = [*self.plan(stage, start), "done"]
        if stage in ("dev", "qa"):  # an existing file is read before it is rewritten
            at = steps.index("work") if "work" in steps else len(steps)
            steps[at:at] = ["read"]
        step = steps[min(turn.rounds, len(steps) - 1)]
        if step == "idle":
            return Reply(
                text="I have read the task and will wait for your go-ahead.", usage=self.usage
            )
        if step == "ask":
            return Reply(
                calls=[Call("ask", {"question": "Shall I draft the story now?"})], usage=self.usage
            )
        if step == "crash":
            script = Path(tempfile.mkdtemp(prefix="crash-")) / "crash.py"
            script.write_text(CRASH_SCRIPT)
            command = f"{sys.executable} {script}"
            return Reply(calls=[Call("shell", {"command": command})], usage=self.usage)
        if step == "read":
            story = self.project / match.group(1)
            return Reply(calls=[Call("read", {"path": str(story)})], usage=self.usage)
        if step == "work":
            return Reply(calls=self.work(stage, match), text="Working on it.", usage=self.usage)
        return Reply(text=f"The {stage} stage is complete.", usage=self.usage)

    def __call__(self, turn: Turn) -> Reply:
        return self.reply(turn)

    def work(self, stage: str, match: re.Match[str]) -> list[Call]:
        """The stage's writes, as absolute paths (every CLI accepts those)."""
        root = self.project
        if stage == "sm":
            story_id, story = match.group(1), root / match.group(2)
            return [write(story, story_text(story_id, "Greet the user"))]
        if stage == "po":
            report = root / match.group(2)
            return [
                write(
                    report,
                    f"# PO Validation: {match.group(1)}\n\nTemplate compliance: all sections "
                    f"present.\nImplementation Readiness Score: 9/10\n\nDecision: GO\n",
                )
            ]
        story = root / match.group(1)
        text = story.read_text()
        story_id = re.match(r"# Story (\S+):", text)
        sid = story_id.group(1) if story_id else "1.1"
        if stage == "dev":
            return [
                write(root / "hello" / "__main__.py", 'print("Hello, world")\n'),
                write(root / "tests" / "test_hello.py", "def test_hello():\n    assert True\n"),
                write(story, developed(text)),
            ]
        slug = "greet-the-user"
        gate = (
            f"schema: 1\nstory: '{sid}'\nstory_title: 'Greet the user'\ngate: PASS\n"
            f"status_reason: 'All acceptance criteria met with tests.'\nreviewer: 'Quinn (Test "
            f"Architect)'\nupdated: '{datetime.now(UTC).isoformat(timespec='seconds')}'\n"
            "top_issues: []\nwaiver: { active: false }\n"
        )
        return [
            write(root / "docs" / "qa" / "gates" / f"{sid}-{slug}.yml", gate),
            write(story, reviewed(text, sid, slug)),
        ]


def write(path: Path, content: str) -> Call:
    """A whole-file write."""
    return Call("write", {"path": str(path), "content": content})
