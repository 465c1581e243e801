"""Command line: `python -m orchestrator epic.yaml [options]` and its subcommands.

This module only parses arguments and calls the application (`orchestrator.app`), the tmux
runtime and the method. Imports are deferred to the command that needs them, so `--help`,
`validate` and config errors answer before LangGraph or libtmux are loaded. A user's mistake
(`InputError`) is a message and exit 2; anything else is a bug: its traceback and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.stages import STAGES

if TYPE_CHECKING:
    from orchestrator.app.config import EpicConfig
    from orchestrator.app.runner import RunOptions

SUBCOMMANDS: tuple[str, ...] = ("status", "sessions", "attach", "cleanup", "graph", "validate")
SUBCOMMANDS += ("approve", "reject", "reply", "worker", "init")
EXIT_BAD_INPUT = 2  # ExitCode.BAD_INPUT, without importing the enum module before it is needed


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def _load(path: str):  # -> EpicConfig
    from orchestrator.app.config import load_epic

    return load_epic(Path(path))


def _preflight(config: EpicConfig, *, simulate: bool) -> int | None:
    """What the run checks before it starts anything (`validate` and `--dry-run` too): the
    warnings printed, and exit 2 when it would refuse."""
    from orchestrator.app.preflight import preflight

    problems, warnings = preflight(config, simulate)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return _error("cannot start:\n  " + "\n  ".join(problems)) if problems else None


def _start(config: EpicConfig, options: RunOptions, *, simulate: bool) -> int:
    """Preflight, then the run (new, resumed, or resumed for an answer); its exit code."""
    from orchestrator.app.runner import EpicRunner

    if (refused := _preflight(config, simulate=simulate)) is not None:
        return refused
    if config.executor == "temporal":
        from orchestrator.executors.temporal import run_to_exit, start_epic

        run_to_exit(start_epic(config))
    return asyncio.run(EpicRunner(config, options).run())


def _worker(args: argparse.Namespace) -> int:
    """`worker epic.yaml --host NAME`: this host's Temporal worker for the epic's stories."""
    from orchestrator.executors.temporal import run_to_exit, run_worker

    run_to_exit(run_worker(_load(args.epic), args.host))


def _run(args: argparse.Namespace) -> int:
    from orchestrator.app.plan import plan
    from orchestrator.app.runner import RunOptions

    config = _load(args.epic)
    options = RunOptions(
        parallel=args.parallel,
        only=args.only or [],
        simulate=args.simulate,
        resume=args.resume,
        accept_changes=args.accept_changes,
        start_at=args.start_at,
        live=False if args.plain else None,
    )
    if args.parallel is not None and args.parallel < 1:
        return _error("--parallel must be at least 1")
    if args.dry_run:
        selected = config.selected(options.only)
        parallel = options.parallel or config.parallel
        start_at = options.checked_start_at()
        print(
            plan(config, selected, parallel=parallel, simulate=options.simulate, start_at=start_at)
        )
        return _preflight(config, simulate=options.simulate) or 0
    if not args.simulate:
        return _start(config, options, simulate=False)
    from orchestrator.app.rehearsal import rehearse

    start = lambda moved: _start(moved, options, simulate=True)  # noqa: E731
    return rehearse(config, start, resume=args.resume, keep=args.keep)


def _answer(args: argparse.Namespace) -> int:
    """approve / reject / reply: record the answer, then let a run resume the story (in the
    rehearsal's copy with `--simulate`)."""
    config = _load(args.epic)
    if not args.simulate:
        return _answer_in(config, args)
    from orchestrator.app.rehearsal import rehearse

    return rehearse(config, lambda moved: _answer_in(moved, args), resume=True, keep=False)


def _answer_in(config: EpicConfig, args: argparse.Namespace) -> int:
    from orchestrator.app import people
    from orchestrator.app.runner import RunOptions
    from orchestrator.app.runs import load_records

    note = args.text if args.command == "reply" else args.note
    said, run_id = people.give_answer(config, args.story, args.command, note)
    print(said, flush=True)
    if run_id is None:  # a live run resumes the story itself
        return 0
    simulate = any(r.simulate for r in load_records(config.state_dir) if r.run_id == run_id)
    options = RunOptions(resume=True, only=[args.story], simulate=simulate, live=False)
    return _start(config, options, simulate=simulate)


def _manager(args: argparse.Namespace, *, writes: bool = False):  # -> TmuxAgentManager
    """The epic's tmux manager; without an epic a read-only one that writes nothing anywhere."""
    from orchestrator.defaults import DEFAULT_PREFIX, DEFAULT_SOCKET
    from orchestrator.tmux import TmuxAgentManager

    if args.epic:
        config = _load(args.epic)
        return TmuxAgentManager(
            config.project,
            socket=args.socket or config.tmux.socket,
            prefix=args.prefix or config.tmux.session_prefix,
            state_dir=config.state_dir,
            read_only=not writes,
        )
    return TmuxAgentManager(
        Path.cwd(),
        socket=args.socket or DEFAULT_SOCKET,
        prefix=args.prefix or DEFAULT_PREFIX,
        read_only=True,
    )


def _sessions(args: argparse.Namespace) -> int:
    manager = _manager(args)
    rows = asyncio.run(manager.list_sessions())
    if not rows:
        print(f"no sessions on tmux socket {manager.socket!r} with prefix {manager.prefix!r}")
        return 0
    for row in sorted(rows, key=lambda r: r.name):
        minutes, seconds = divmod(int(row.running_seconds), 60)
        state = "running" if row.alive else f"exited ({row.exit_status})"
        print(
            f"{row.name}  story {row.story_id}  stage {row.stage}  attempt {row.attempt}  "
            f"{state}  {minutes}m{seconds:02d}s  run {row.run_id}\n"
            f"    watch: {manager.attach_instructions(row.name)}"
        )
    return 0


def _attach(args: argparse.Namespace) -> int:
    manager = _manager(args)
    rows = [
        row
        for row in asyncio.run(manager.list_sessions())
        if row.story_id == args.story and (args.stage is None or row.stage == args.stage)
    ]
    if not rows:
        what = f"story {args.story}" + (f" stage {args.stage}" if args.stage else "")
        return _error(f"no live session for {what} on socket {manager.socket!r}")
    row = max(rows, key=lambda r: (r.alive, r.started_at))
    command = manager.attach_instructions(row.name, read_only=not args.write)
    if args.print:
        print(command)
        return 0
    import shlex

    argv = shlex.split(command)
    os.execvp(argv[0], argv)
    return 0  # pragma: no cover - exec does not return


def _cleanup(args: argparse.Namespace) -> int:
    from orchestrator.units import parse_duration

    try:
        max_age = parse_duration(args.older_than)
    except ValueError as exc:
        return _error(f"--older-than: {exc}")
    manager = _manager(args, writes=True)

    async def clean() -> tuple[list[str], list[str]]:
        return await manager.cleanup_orphans(max_age), await manager.reap_vanished()

    killed, reaped = asyncio.run(clean())
    for name in killed:
        print(f"killed {name}")
    for name in reaped:
        print(f"killed what was left of {name} (its tmux session was gone)")
    print(f"{len(killed)} session(s) older than {args.older_than} killed")
    if not manager.read_only:
        manager.server.remove_idle_socket()
    if args.epic:
        from orchestrator.app.isolation import prune_worktrees

        for line in prune_worktrees(_load(args.epic)):
            print(line)
    return 0


def _graph(args: argparse.Namespace) -> int:
    from orchestrator.ui.graph import story_graph_ascii, story_graph_mermaid

    print(story_graph_mermaid())
    if not args.mermaid_only and (drawing := story_graph_ascii()):
        print(drawing)
    return 0


def _status(args: argparse.Namespace) -> int:
    from orchestrator.app.status import show_status

    show_status(_load(args.epic), as_json=args.json)
    return 0


def _init(args: argparse.Namespace) -> int:
    from orchestrator.app.init import init_project

    print("\n".join(init_project(Path(args.folder))))
    return 0


def _validate(args: argparse.Namespace) -> int:
    config = _load(args.epic)
    if (refused := _preflight(config, simulate=False)) is not None:
        return refused
    print(
        f"{args.epic}: ok - {len(config.stories)} stories, parallel {config.parallel}, "
        f"project {config.project}"
    )
    return 0


def _session_options(parser: argparse.ArgumentParser, *, epic_positional: bool = True) -> None:
    if epic_positional:
        parser.add_argument("epic", nargs="?", help="epic.yaml (for its tmux socket and prefix)")
    else:
        parser.add_argument("--epic", help="epic.yaml (for its tmux socket and prefix)")
    parser.add_argument("--socket", help="tmux socket name (default: the epic's, or bmad)")
    parser.add_argument("--prefix", help="session name prefix (default: the epic's, or bmad)")


def build_run_parser() -> argparse.ArgumentParser:
    """The parser of `python -m orchestrator epic.yaml [options]`."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator",
        description=(
            "Run every story of an epic through the BMad cycle (SM -> PO -> Dev -> QA), each "
            "stage in its own tmux agent session. Subcommands: " + ", ".join(SUBCOMMANDS) + "."
        ),
    )
    parser.add_argument("epic", help="the epic.yaml to run")
    parser.add_argument("--parallel", type=int, help="stories in flight at once (overrides epic)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these stories")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="rehearse: the simulated agent (no tokens) on a scratch copy of the project",
    )
    parser.add_argument("--keep", action="store_true", help="with --simulate: keep the copy")
    parser.add_argument("--resume", action="store_true", help="continue the last unfinished run")
    parser.add_argument(
        "--accept-changes",
        action="store_true",
        help="with --resume: go on although epic.yaml changed since the run began",
    )
    parser.add_argument(
        "--start-at",
        choices=STAGES,
        help="with --only: start those stories at this stage, whatever their files say",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and print the plan; start nothing"
    )
    parser.add_argument(
        "--plain", action="store_true", help="one line per event even in a terminal"
    )
    parser.set_defaults(handler=_run)
    return parser


def build_command_parser() -> argparse.ArgumentParser:
    """The parser of the subcommands (status, sessions, attach, ...)."""
    parser = argparse.ArgumentParser(prog="python -m orchestrator")
    commands = parser.add_subparsers(dest="command", required=True)

    status = commands.add_parser("status", help="where each story stands; starts nothing")
    status.add_argument("epic")
    status.add_argument("--json", action="store_true", help="a JSON list, one object per story")
    status.set_defaults(handler=_status)

    sessions = commands.add_parser("sessions", help="live agent sessions of the tmux socket")
    _session_options(sessions)
    sessions.set_defaults(handler=_sessions)

    attach = commands.add_parser("attach", help="watch a story's live session (read-only)")
    attach.add_argument("story")
    attach.add_argument("stage", nargs="?", choices=STAGES)
    attach.add_argument("--write", action="store_true", help="attach read-write (careful)")
    attach.add_argument("--print", action="store_true", help="print the tmux command instead")
    _session_options(attach, epic_positional=False)
    attach.set_defaults(handler=_attach)

    cleanup = commands.add_parser(
        "cleanup",
        help="kill orphan sessions of this socket; with an epic, prune its finished worktrees",
    )
    _session_options(cleanup)
    cleanup.add_argument("--older-than", default="1h", help="age such as 30m or 2h (default 1h)")
    cleanup.set_defaults(handler=_cleanup)

    graph = commands.add_parser("graph", help="print the story graph (Mermaid, and ASCII)")
    graph.add_argument("--mermaid-only", action="store_true", help="print only the Mermaid text")
    graph.set_defaults(handler=_graph)

    for name, text in (
        ("approve", "let a story waiting for a person go on"),
        ("reject", "send a waiting story back (after_po: to SM; after_qa: to Dev) or stop it"),
        ("reply", "answer the question an agent asked (on_needs_input)"),
    ):
        answer = commands.add_parser(name, help=text)
        answer.add_argument("epic")
        answer.add_argument("story")
        if name == "reply":
            answer.add_argument("text", help="the answer, given to a fresh attempt of the stage")
        else:
            answer.add_argument("--note", required=name == "reject", help="what to change, or why")
        answer.add_argument("--simulate", action="store_true", help="answer a rehearsal's question")
        answer.set_defaults(handler=_answer)

    worker = commands.add_parser("worker", help="run this host's Temporal worker for an epic")
    worker.add_argument("epic")
    worker.add_argument("--host", required=True, help="this host's name in the epic")
    worker.set_defaults(handler=_worker)

    init = commands.add_parser("init", help="write a first epic.yaml for a BMad project")
    init.add_argument("folder", nargs="?", default=".", help="the project (default: here)")
    init.set_defaults(handler=_init)

    validate = commands.add_parser("validate", help="check an epic.yaml and say what is wrong")
    validate.add_argument("epic")
    validate.set_defaults(handler=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in SUBCOMMANDS:
        parser = build_command_parser()
    else:
        parser = build_run_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        return int(exit_.code or 0) if exit_.code not in (None, 0) else 0
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `... | head` stopped reading: not an error, and nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from orchestrator.errors import InputError, full_disk  # lazily: `--help` stays fast

        if isinstance(exc := full_disk(exc) or exc, InputError):
            return _error(str(exc))
        traceback.print_exc()
        print(
            f"internal error (a bug, not your input): {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return 1
