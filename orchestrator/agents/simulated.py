"""A stand-in for an agent CLI: a real TUI-ish program that does each stage's file work.

Run inside tmux exactly like `claude` would be: the stage and story come from the session
environment (`BMAD_STAGE`, `BMAD_STORY_ID`, `BMAD_PROJECT`, `BMAD_STATE_DIR`, `BMAD_METHOD`), the
prompt from the last argv element or typed into its input line (`sim> `, raw mode, bracketed
paste). It writes what the real BMad agent writes, through the method's rehearsal (story file, PO
report, Status, gate file), and then stays alive, as Claude Code does, until it is killed.

Like a real agent it ends each turn with a signal: it writes `BMAD_TURN_END_FILE` (or, given a
Claude settings file with `--settings`, runs that file's `Stop` hooks as Claude Code would), and
`BMAD_ATTENTION_FILE` (or the `PreToolUse` hooks for `AskUserQuestion`) when it asks a question.
`--quiet-turns` signals nothing.

Verdicts and failures are scriptable so every route of the story graph can be rehearsed:
`--po-nogo [ID=]N`, `--qa-fail [ID=]N`, `--dev-blocked all|ID[,ID]`, `--qa-gate VALUE`,
`--followup-review [ID=]N` (v6 build-auto),
`--dev-edit [ID=]PATH[:LINE]` (code changes; a Dev in a merge round keeps both sides of each
conflict),
`--misbehave exit-at-start|exit-mid-stage|hang|pieces|orphan-child|ask|idle-turn|menu` (for the
first `--misbehave-times` runs of `--misbehave-stage` of `--misbehave-story`): `ask` asks a
question and waits for a typed answer before working, `idle-turn` ends its first turn without
output, `menu` stops at a v6 review's menu although the prompt answered it.
`--revise-in-steps` makes an SM revision in several writes over a second or more, and
`--gate-first` writes the QA gate file, then the QA Results entry a second later. Runs are counted
per story and stage in `{state_dir}/simulated/runs.json`, which is also how tests prove a stage
was not re-run.

Only the standard library, this package's file helpers and the method: it starts in tens of
milliseconds. Longer than 400 lines because it is one program (options, turns, hooks and the
scripted misbehaviour of a stand-in CLI), read top to bottom like the CLIs it stands in for.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.agents.clis.base import USAGE_VARIABLE
from orchestrator.agents.codework import apply_edits, parse_edit, resolve_conflicts
from orchestrator.agents.lookalike import INPUT_LINES, Lookalike, add_arguments
from orchestrator.agents.steering import pointed_text
from orchestrator.agents.tty import BRACKETED_PASTE_ON, InputLine, raw_terminal
from orchestrator.defaults import STATE_DIR_NAME
from orchestrator.files import StateDir, open_private, write_atomic, write_private
from orchestrator.methods import DEFAULT_METHOD, RehearsalPaused, get_method
from orchestrator.stages import STAGES

PROMPT = "sim> "
MISBEHAVIOURS = (
    "exit-at-start",
    "exit-mid-stage",
    "hang",
    "pieces",
    "orphan-child",
    "ask",
    "idle-turn",
    "menu",
)
QUESTION = "? The story has open issues: accept the risk and override? (type your answer)"
STEP_PAUSE = 0.5  # the simulated agent's own pace between the writes of a multi-step edit
TRUST_DIALOG = (
    "Do you trust the files in this folder?\n\n"
    "❯ 1. Yes, proceed\n  2. No, exit\n\nEnter to confirm · Esc to exit"
)
EXIT_AT_START = 3
EXIT_MID_STAGE = 4


# --- run counting -------------------------------------------------------------------------------


def _runs_file(state_dir: Path) -> Path:
    return state_dir / "simulated" / "runs.json"


@contextlib.contextmanager
def _locked_runs(state_dir: Path) -> Iterator[dict[str, dict[str, int]]]:
    folder = StateDir(state_dir).folder("simulated")
    lock_fd = open_private(folder / "runs.lock", os.O_RDWR)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        runs = read_runs(state_dir)
        yield runs
        write_private(_runs_file(state_dir), json.dumps(runs, indent=1))
    finally:
        os.close(lock_fd)


def read_runs(state_dir: Path) -> dict[str, dict[str, int]]:
    """How many times each stage of each story started: `{story: {stage: count}}`."""
    try:
        data = json.loads(_runs_file(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def count_run(state_dir: Path, story_id: str, stage: str) -> int:
    """Record one more start of `stage` for `story_id`; returns its 1-based run number."""
    with _locked_runs(state_dir) as runs:
        per_story = runs.setdefault(story_id, {})
        per_story[stage] = per_story.get(stage, 0) + 1
        return per_story[stage]


# --- options ------------------------------------------------------------------------------------


def _per_story(specs: list[str] | None, story_id: str) -> int:
    """`N` applies to every story, `ID=N` to one; the story's own spec wins."""
    general, specific = 0, None
    for spec in specs or []:
        key, sep, value = spec.rpartition("=")
        if sep and key == story_id:
            specific = int(value)
        elif not sep:
            general = int(value)
    return specific if specific is not None else general


def _count_spec(value: str) -> str:
    _, _, number = value.rpartition("=")
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected N or ID=N, got {value!r}")
    return value


def _edit_spec(value: str) -> object:
    try:
        return parse_edit(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The simulated agent's command line (its prompt is the optional positional)."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.agents.simulated",
        description="A simulated BMad agent CLI for rehearsals and tests.",
    )
    parser.add_argument("prompt", nargs="?", help="the stage prompt (as claude takes it)")
    parser.add_argument("--record", type=Path, help="append every prompt received as JSONL")
    parser.add_argument(
        "--trust-dialog", action="store_true", help="ask Claude's workspace-trust question first"
    )
    parser.add_argument("--input-prompt", help="the input line's prompt text (default: sim> )")
    parser.add_argument("--slow-start", type=float, default=0.0, metavar="S")
    parser.add_argument("--work-seconds", type=float, default=0.0, metavar="S")
    parser.add_argument("--swallow-enters", type=int, default=0, metavar="N")
    parser.add_argument("--po-nogo", action="append", type=_count_spec, metavar="[ID=]N")
    parser.add_argument("--qa-fail", action="append", type=_count_spec, metavar="[ID=]N")
    parser.add_argument("--dev-blocked", metavar="all|ID[,ID]")
    parser.add_argument(
        "--followup-review", action="append", type=_count_spec, metavar="[ID=]N",
        help="build-auto: recommend a follow-up review on the first N Dev runs",
    )  # fmt: skip
    parser.add_argument(
        "--dev-edit",
        action="append",
        type=_edit_spec,
        default=[],
        metavar="[ID=]PATH[:LINE]",
        help="Dev changes PATH: replaces LINE, or appends a line (see codework)",
    )
    parser.add_argument(
        "--qa-gate",
        default="PASS",
        metavar="VALUE",
        help="the verdict of a passing review (PASS, CONCERNS, WAIVED, or an invented one)",
    )
    parser.add_argument(
        "--po-conditional",
        action="store_true",
        help="a GO is written as 'CONDITIONAL GO' with a condition",
    )
    parser.add_argument("--misbehave", choices=MISBEHAVIOURS)
    parser.add_argument("--misbehave-times", type=int, default=None, metavar="N")
    parser.add_argument("--misbehave-stage", choices=STAGES)
    parser.add_argument("--misbehave-story", metavar="ID")
    parser.add_argument("--ignore-sighup", action="store_true")
    parser.add_argument(
        "--quiet-turns", action="store_true", help="never signal a turn end or a question"
    )
    parser.add_argument(
        "--settings", type=Path, help="a Claude Code settings file: run its hooks as Claude would"
    )
    parser.add_argument("--revise-in-steps", action="store_true")
    parser.add_argument("--gate-first", action="store_true")
    parser.add_argument(
        "--step-pause",
        type=float,
        default=STEP_PAUSE,
        metavar="S",
        help="seconds between the writes of --revise-in-steps and --gate-first",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.input_prompt is None:
        args.input_prompt = INPUT_LINES.get(args.like or "", PROMPT)
    if args.prompt is None and args.prompt_option is not None:
        args.prompt = args.prompt_option  # `-i` (gemini, copilot) or `--prompt` (opencode)
    return args


@dataclass
class Identity:
    """Which stage of which story, in which project: what the session's environment says."""

    stage: str | None
    story_id: str | None
    project: Path
    state_dir: Path
    method: str = DEFAULT_METHOD

    @classmethod
    def from_env(cls) -> Identity:
        """The identity the orchestrator put in the session's environment."""
        project = Path(os.environ.get("BMAD_PROJECT") or os.getcwd())
        state_dir = Path(os.environ.get("BMAD_STATE_DIR") or project / STATE_DIR_NAME)
        return cls(
            os.environ.get("BMAD_STAGE") or None,
            os.environ.get("BMAD_STORY_ID") or None,
            project,
            state_dir,
            os.environ.get("BMAD_METHOD") or DEFAULT_METHOD,
        )


def say(text: str = "") -> None:
    """Print a line as a TUI does (CR LF, flushed)."""
    sys.stdout.write(text.replace("\n", "\r\n") + "\r\n")
    sys.stdout.flush()


# --- the agent ----------------------------------------------------------------------------------


class Agent:
    """One simulated agent session: its turns, its misbehaviour, its file work."""

    def __init__(self, args: argparse.Namespace, me: Identity) -> None:
        self.args = args
        self.me = me
        self.run = 0
        self.task: str | None = None  # the first message: what this stage is to do
        self.done = False
        self.paused = False  # the work stopped for a person (a menu); the next message answers
        self.lookalike = Lookalike(args.like, args) if args.like else None

    def misbehaving(self, mode: str) -> bool:
        """Whether the scripted misbehaviour `mode` applies to this run."""
        args = self.args
        if args.misbehave != mode or self.me.stage is None:
            return False
        if args.misbehave_stage not in (None, self.me.stage):
            return False
        if args.misbehave_story not in (None, self.me.story_id):
            return False
        return args.misbehave_times is None or self.run <= args.misbehave_times

    def start(self) -> None:
        """What the agent does before its first prompt: count the run, misbehave, ask."""
        me = self.me
        if me.stage and me.story_id:
            self.run = count_run(me.state_dir, me.story_id, me.stage)
        if self.args.ignore_sighup or self.misbehaving("orphan-child"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        say(f"Simulated BMad agent · stage {me.stage or '-'} · story {me.story_id or '-'}")
        say(f"run {self.run} · project {me.project}")
        if self.misbehaving("exit-at-start"):
            say("fatal: simulated crash at start")
            sys.exit(EXIT_AT_START)
        if self.misbehaving("orphan-child"):
            self.spawn_orphan()
        if self.args.slow_start:
            time.sleep(self.args.slow_start)  # simulates a slow TUI start-up, not a sync point
        if self.args.trust_dialog:
            self.trust_dialog()
        if self.lookalike is not None and (idle := self.lookalike.idle_text()):
            say(idle)

    def trust_dialog(self) -> None:
        """The CLI's first-run trust question: nothing happens until Enter accepts it."""
        screen = TRUST_DIALOG
        if self.lookalike is not None and self.lookalike.like != "claude":
            screen = self.lookalike.trust_screen() or ""
            if not screen:
                return  # this CLI asks no such question
        say(screen)
        with raw_terminal():
            while True:
                key = os.read(0, 1024)
                if not key:
                    sys.exit(EXIT_AT_START)
                if b"\r" in key or b"\n" in key:
                    break
        sys.stdout.write("\x1b[2J\x1b[H")  # the dialog is gone from the screen, as in Claude
        say("workspace trusted")

    def spawn_orphan(self) -> None:
        """A child that leaves the process group and ignores SIGHUP/SIGTERM, as MCP servers do."""
        me = self.me
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            folder = StateDir(me.state_dir).folder("simulated")
            write_private(folder / f"orphan-{me.story_id}-{me.stage}.pid", str(os.getpid()))
            while True:
                signal.pause()

    def receive(self, text: str) -> None:
        """One message typed or passed in: the task, an answer, or a nudge. Each is a turn."""
        if self.args.record is not None:
            line = json.dumps(
                {
                    "prompt": text,
                    "stage": self.me.stage,
                    "story": self.me.story_id,
                    "argv": sys.argv[1:],
                }
            )
            with self.args.record.open("a") as handle:
                handle.write(line + "\n")
        say(f"● received prompt ({len(text.encode())} bytes)")
        pointed = pointed_text(text)
        if pointed is not None:  # a line pointing to the text: read it, as an agent would
            say("● read the file the line points to")
            text = pointed.rstrip("\n")
        if self.task is None:
            self.task = text
            if self.misbehaving("ask"):
                say(QUESTION)
                self.signal_attention()
                return  # waiting for the answer: the turn is not over
            if self.misbehaving("idle-turn"):
                say("● I have read the task and will wait for your go-ahead.")
                self.end_turn("I have read the task.")
                return
        elif self.done:
            say("● nothing more to do: the stage's output is written")
            self.end_turn("Nothing more to do.")
            return
        if self.misbehaving("hang"):
            say("thinking…")
            return  # a hang: the turn never ends
        answered = self.paused and text != self.task
        self.done = self.work(f"{self.task}\n\n{text}" if answered else self.task)
        self.end_turn("Done." if self.done else "I could not do it.")

    def record_usage(self) -> None:
        """One turn's made-up tokens where the orchestrator reads them (the simulated profile):
        the prompt's size in, a fixed answer out."""
        path = os.environ.get(USAGE_VARIABLE)
        if path:
            turn = {"input": 1500 + len((self.task or "").encode()) // 4, "output": 350}
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(turn) + "\n")

    def end_turn(self, message: str) -> None:
        """The turn is over: write the turn-end file, or run the Stop hooks as Claude does."""
        say(f"● turn ended{' (quietly)' if self.args.quiet_turns else ''}: {message}")
        like = self.lookalike
        if like is not None and like.like != "claude":
            like.end_turn(self.task or "", message, signal=not self.args.quiet_turns)
            return
        if like is None:
            self.record_usage()
        transcript = like.record_usage() if like is not None else None
        if self.args.quiet_turns:
            return
        payload: dict[str, object] = {
            "hook_event_name": "Stop",
            "session_id": like.session_id if like is not None else f"simulated-{os.getpid()}",
            "transcript_path": str(transcript or ""),
            "cwd": os.getcwd(),
            "stop_hook_active": False,
            "last_assistant_message": message,
        }
        if self.args.settings is not None:
            answer = self.run_hooks("Stop", None, payload)
            if answer.get("decision") == "block":  # Claude goes on with the reason as input
                self.receive(str(answer.get("reason") or ""))
            return
        target = os.environ.get("BMAD_TURN_END_FILE")
        if target:
            write_atomic(Path(target), json.dumps(payload), mode=0o600)

    def signal_attention(self) -> None:
        """A question for a person: the attention file, or the CLI's own hooks."""
        if self.args.quiet_turns:
            return
        if self.lookalike is not None and self.lookalike.like != "claude":
            self.lookalike.ask(QUESTION)
            return
        payload: dict[str, object] = {
            "hook_event_name": "PreToolUse",
            "session_id": f"simulated-{os.getpid()}",
            "cwd": os.getcwd(),
            "tool_name": "AskUserQuestion",
            "tool_input": {"questions": [{"question": QUESTION}]},
        }
        if self.args.settings is not None:
            answer = self.run_hooks("PreToolUse", "AskUserQuestion", payload)
            verdict = answer.get("hookSpecificOutput")
            if isinstance(verdict, dict) and verdict.get("permissionDecision") == "deny":
                say("● the question was declined by a hook")
                self.paused = True  # the denial's reason is what the model reads next
                self.receive(str(verdict.get("permissionDecisionReason") or ""))
            return
        target = os.environ.get("BMAD_ATTENTION_FILE")
        if target:
            write_atomic(Path(target), json.dumps(payload), mode=0o600)

    def run_hooks(
        self, event: str, subject: str | None, payload: dict[str, object]
    ) -> dict[str, Any]:
        """Run the settings file's command hooks for `event`, JSON on stdin, as Claude Code does;
        the last JSON object a hook printed (its decision), or {}."""
        import subprocess

        answer: dict[str, Any] = {}
        settings = json.loads(self.args.settings.read_text())
        for entry in settings.get("hooks", {}).get(event, []):
            matcher = entry.get("matcher")
            if matcher and (subject is None or not re.fullmatch(matcher, subject)):
                continue
            for hook in entry.get("hooks", []):
                if hook.get("type") == "command":
                    done = subprocess.run(
                        ["/bin/sh", "-c", hook["command"]],
                        input=json.dumps(payload).encode(),
                        capture_output=True,
                        timeout=hook.get("timeout", 60),
                        check=False,
                    )
                    with contextlib.suppress(ValueError):
                        printed = json.loads(done.stdout or b"{}")
                        answer = printed if isinstance(printed, dict) and printed else answer
        return answer

    def work(self, prompt: str) -> bool:
        """The stage's file work; False when there is nothing to show for it."""
        me, args = self.me, self.args
        if me.stage is None or me.story_id is None:
            say("no BMAD_STAGE/BMAD_STORY_ID: nothing to do")
            return False
        for step in range(int(args.work_seconds / 0.5)):
            say(f"working… {step * 0.5:.1f}s")
            time.sleep(0.5)  # simulated work time (--work-seconds), printed as it passes
        rehearsal = get_method(me.method).open(me.project).rehearsal()
        crash = self.misbehaving("exit-mid-stage")
        try:
            if me.stage == "sm":
                said = rehearsal.draft(
                    me.story_id,
                    prompt,
                    pieces=self.misbehaving("pieces"),
                    partial=crash,
                    in_steps=args.revise_in_steps,
                    pause=args.step_pause,
                )
            elif crash:
                said = ""
            elif me.stage == "po":
                go = self.run > _per_story(args.po_nogo, me.story_id)
                said = rehearsal.validate(
                    me.story_id, prompt, go=go, conditional=args.po_conditional
                )
            elif me.stage == "dev":
                blocked_ids = (args.dev_blocked or "").split(",")
                blocked = "all" in blocked_ids or me.story_id in blocked_ids
                if not blocked:
                    for name in resolve_conflicts(me.project):
                        say(f"● resolved the conflict in {name} (both sides kept)")
                    apply_edits(me.project, me.story_id, args.dev_edit)
                said = rehearsal.develop(
                    me.story_id,
                    prompt,
                    blocked=blocked,
                    followup=self.run <= _per_story(args.followup_review, me.story_id),
                    omit_result=self.misbehaving("pieces"),
                )
            else:
                failing = self.run <= _per_story(args.qa_fail, me.story_id)
                # `menu`: stop at the skill's menu as if the prompt had not answered it.
                heard = prompt.splitlines()[-1] if self.misbehaving("menu") else prompt
                said = rehearsal.review(
                    me.story_id,
                    heard,
                    verdict="FAIL" if failing else args.qa_gate,
                    gate_first=args.gate_first,
                    pause=args.step_pause,
                )
        except FileNotFoundError as exc:
            say(f"error: {exc}")
            return False
        except RehearsalPaused as stop:
            say(str(stop))
            self.paused = True
            return False
        self.paused = False
        if crash:
            say("fatal: simulated crash mid-stage")
            sys.exit(EXIT_MID_STAGE)
        say(f"● {said}")
        if self.lookalike is not None and self.lookalike.like == "copilot":
            self.lookalike.subagent_stop()  # a subagent's turn ends after the work, as in Copilot
        return True

    def show_prompt(self, line: InputLine | None = None) -> None:
        """Redraw the input line."""
        shown = line.shown() if line is not None else ""
        sys.stdout.write(f"\r\x1b[K{self.args.input_prompt}{shown}")
        sys.stdout.flush()

    def interact(self) -> None:
        """Read input until killed: typed lines, or a raw terminal with paste."""
        if not os.isatty(0):
            for text in sys.stdin:
                if text.strip():
                    self.receive(text.rstrip("\n"))
            while True:
                signal.pause()
        sys.stdout.write(BRACKETED_PASTE_ON)
        line = InputLine(swallow_enters=self.args.swallow_enters)
        self.show_prompt()
        with raw_terminal():
            while chunk := os.read(0, 65536):
                for message in line.feed(chunk):
                    sys.stdout.write("\r\n")
                    self.receive(message)
                self.show_prompt(line)
        while True:  # the terminal closed: stay, as a TUI waiting for its kill would
            signal.pause()


def main(argv: list[str] | None = None) -> None:
    """Run the simulated agent."""
    args = parse_args(argv)
    agent = Agent(args, Identity.from_env())
    agent.start()
    if args.prompt is not None:
        first_line = args.prompt.strip().splitlines()[0][:150] if args.prompt.strip() else ""
        say(f"{args.input_prompt}{first_line}")
        agent.receive(args.prompt)
    agent.interact()


if __name__ == "__main__":
    main()
