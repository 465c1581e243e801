"""Starting an agent session: one chained tmux call, so nothing the agent prints is lost.

The agent is the window's command (argv, no shell, no `cd` typed by keys), so nothing races a
shell's start-up; the prompt is its last argument when the CLI takes one (or, when long or
asked for, an owner-only file it is told to read). Metadata lives in tmux user options, so a
second manager (after a restart) finds everything it needs on the server. Each spawn also
records its process session and a token in the agent's environment, outside tmux, so what a
dead server leaves behind can still be found (see `processes`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.agents.clis import INHERITED_NOT
from orchestrator.agents.clis.base import LaunchSpec
from orchestrator.agents.profiles import AgentProfile
from orchestrator.agents.steering import relay_env
from orchestrator.errors import StateDirError
from orchestrator.eventlog import EventLog
from orchestrator.files import StateDir, read_private, touch_private, write_in_tree, write_private
from orchestrator.tmux.logs import pipe_command
from orchestrator.tmux.model import AgentSession
from orchestrator.tmux.names import sanitise, tmux_literal
from orchestrator.tmux.processes import TOKEN_VARIABLE, process_identity
from orchestrator.tmux.server import TmuxServer

WINDOW_SIZE = (220, 50)
HISTORY_LIMIT = 10000
# The pane command. Constant text: user data (argv, prompt) only ever arrives as "$@", so nothing
# is interpreted by a shell. The subshell keeps the wrapper alive to record the agent's status.
WRAPPER_SCRIPT = (
    f'unset {" ".join(INHERITED_NOT)} TMUX TMUX_PANE; "$@"; rc=$?; '
    'printf "%s\\n" "$rc" > "$BMAD_EXIT_FILE"; exit "$rc"'
)


def record_path(state: StateDir, name: str) -> Path:
    """Where the spawn record of session `name` is kept."""
    return state.root / "run" / f"{name}.proc.json"


def start_session(
    server: TmuxServer,
    state: StateDir,
    events: EventLog,
    *,
    project: Path,
    run_id: str,
    log_max_bytes: int,
    name: str,
    stage: str,
    story_id: str,
    profile: AgentProfile,
    prompt: str | None,
    attempt: int,
    env: Mapping[str, str],
    story_file: Path | None,
    meta: dict[str, Any],
    agent: str = "",
) -> AgentSession:
    """Start the agent in a new session `name`, in one chained tmux call (blocking)."""
    started = time.monotonic()
    logs = state.folder(Path("logs") / run_id)
    run = state.folder("run")
    log_path, exit_file = logs / f"{name}.{attempt}.log", run / f"{name}.exit"
    turn_end_file = run / f"{name}.turn"
    attention_file = run / f"{name}.attention"
    submit_file = run / f"{name}.submitted"
    signals = (turn_end_file, attention_file)
    answers = [Path(f"{path}{suffix}") for path in signals for suffix in (".reply", ".taken")]
    for stale in (exit_file, *signals, submit_file, *answers):
        stale.unlink(missing_ok=True)  # a planted link is removed, never written through
    touch_private(log_path)
    agent_session_id = str(uuid.uuid4())
    launch = profile.support.launch(
        LaunchSpec(
            name=name,
            run_dir=run,
            cwd=project,
            session_id=agent_session_id,
            agent=agent,
            flags=profile.command,
        )
    )
    for path, content in launch.files.items():
        write_private(state.file(path), content)
    if (
        prompt is not None
        and profile.prompt_via_argv
        and (profile.prompt_via == "file" or len(prompt.encode()) > profile.max_argv_prompt)
    ):
        prompt = _prompt_pointer(state, run_id, name, attempt, prompt)
    token = uuid.uuid4().hex
    owner = process_identity(os.getpid())
    record_file = record_path(state, name)
    cwd_files = [str(path) for path in [*launch.cwd_files, *launch.private_files]]
    record = {"session": name, "token": token, "sid": None, "owner": owner, "cwd_files": cwd_files}
    write_private(record_file, json.dumps(record))
    for path, content in launch.private_files.items():  # recorded first, as cwd files are
        write_private(path, content)
    for warning in launch.warnings:
        events.write("cli-warning", session=name, profile=profile.name, warning=warning)
    made: list[str] = []
    for path, content in launch.cwd_files.items():  # recorded first: a crash cannot strand them
        try:
            made += [str(folder) for folder in write_in_tree(project, path, content)]
        except FileExistsError:  # the repository's own file: never overwritten, never removed
            record["cwd_files"] = [name for name in cwd_files if name != str(path)]
            write_private(record_file, json.dumps({**record, "cwd_dirs": made}))
            raise StateDirError(
                f"{path} already exists and is not ours: move it away, then run again"
            ) from None
    if made:
        write_private(record_file, json.dumps({**record, "cwd_dirs": made}))
        record["cwd_dirs"] = made
    environment = {
        **profile.env,
        **launch.env,
        **env,
        "BMAD_STAGE": stage,
        "BMAD_STORY_ID": story_id,
        "BMAD_PROJECT": str(project),
        "BMAD_STATE_DIR": str(state.root),
        "BMAD_RUN_ID": run_id,
        "BMAD_ATTEMPT": str(attempt),
        "BMAD_EXIT_FILE": str(exit_file),
        "BMAD_TURN_END_FILE": str(turn_end_file),
        "BMAD_ATTENTION_FILE": str(attention_file),
        "BMAD_SUBMIT_FILE": str(submit_file),
        **relay_env(),
        TOKEN_VARIABLE: token,
    }
    if story_file is not None:
        environment["BMAD_STORY_FILE"] = str(story_file)
    agent_argv = profile.argv(prompt, launch=launch, agent=agent)
    argv = ["/bin/sh", "-c", WRAPPER_SCRIPT, "bmad-agent", *agent_argv]
    env_args = [arg for key, value in environment.items() for arg in ("-e", f"{key}={value}")]
    options = {
        "@bmad-stage": stage,
        "@bmad-story": story_id,
        "@bmad-run": run_id,
        "@bmad-attempt": str(attempt),
        "@bmad-log": str(log_path),
        "@bmad-exit": str(exit_file),
        "@bmad-meta": json.dumps({**meta, "agent_session_id": agent_session_id}),
        "@bmad-owner": owner,
    }
    chained: list[str] = []
    for key, value in options.items():
        chained += [";", "set-option", "-t", f"={name}:", key, value]
    server_options: list[str] = []
    if server.private:
        # Before the pane exists: history-limit applies at creation, and remain-on-exit
        # must hold even for an agent that exits at once.
        server_options = [
            "start-server",
            ";",
            "set-option", "-g", "history-limit", str(HISTORY_LIMIT),
            ";",
            "set-option", "-g", "remain-on-exit", "on",
            ";",
        ]  # fmt: skip
    width, height = WINDOW_SIZE
    out = server.run_retrying(
        *server_options,
        "new-session",
        "-d",
        "-P",
        "-F",
        "#{pane_id}\t#{session_created}\t#{pane_pid}",
        "-s",
        name,
        "-n",
        tmux_literal(f"{sanitise(stage)}-{sanitise(story_id)}"),
        "-c",
        tmux_literal(str(project)),
        "-x",
        str(width),
        "-y",
        str(height),
        *env_args,
        *argv,
        # Same tmux call: nothing the agent prints before these run can be lost.
        ";",
        "set-option",
        "-w",
        "-t",
        f"={name}:",
        "remain-on-exit",
        "on",
        ";",
        "pipe-pane",
        "-t",
        f"={name}:",
        pipe_command(log_path, log_max_bytes),
        *chained,
        on_retry=lambda error: events.write("tmux-retry", error=error),
    )
    pane_id, created, pane_pid = out[0].split("\t")
    write_private(record_file, json.dumps({**record, "sid": int(pane_pid)}))
    session = AgentSession(
        name=name,
        pane_id=pane_id,
        stage=stage,
        story_id=story_id,
        run_id=run_id,
        attempt=attempt,
        log_path=log_path,
        exit_file=exit_file,
        started_at=datetime.fromtimestamp(int(created), UTC),
        meta={**meta, "agent_session_id": agent_session_id, "warnings": launch.warnings},
    )
    events.write(
        "spawn",
        session=name,
        stage=stage,
        story=story_id,
        attempt=attempt,
        profile=profile.name,
        argv=profile.argv(None, launch=launch, agent=agent),
        prompt_bytes=len(prompt.encode()) if prompt else 0,
        log=str(log_path),
        ms=round((time.monotonic() - started) * 1000, 2),
    )
    return session


def remove_cwd_files(record_path: Path) -> None:
    """Remove the files a session's CLI read from its working directory (see `Launch`)."""
    try:
        record = json.loads(read_private(record_path))
    except (OSError, ValueError):
        return
    for name in record.get("cwd_files") or []:
        path = Path(str(name))
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
    for name in reversed(record.get("cwd_dirs") or []):  # the folders made for them, if empty
        with contextlib.suppress(OSError):
            Path(str(name)).rmdir()


def _prompt_pointer(state: StateDir, run_id: str, name: str, attempt: int, prompt: str) -> str:
    folder = state.folder(Path("prompts") / run_id)
    path = folder / f"{name}.{attempt}.md"
    write_private(path, prompt)
    return f"Read the file {path} and follow the instructions in it exactly."
