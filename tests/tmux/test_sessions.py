"""The tmux agent manager against a real tmux server on a private socket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from orchestrator.agents.profiles import make_profile
from orchestrator.errors import DeliveryError
from orchestrator.tmux import TmuxAgentManager, logs
from orchestrator.tmux.processes import session_members
from orchestrator.tmux.screen import wait_for_screen, wait_until_ready
from orchestrator.watch import wait_for_output
from tests.helpers import alive, simulated_argv, spawn_orphan, wait_until

ARGV_DUMP = (
    "import json, os, sys, pathlib;"
    "pathlib.Path(os.environ['DUMP']).write_text(json.dumps({'argv': sys.argv[1:],"
    " 'cwd': os.getcwd(), 'env': dict(os.environ)}));"
    "print('dumped', flush=True);"
    "import time; time.sleep(3600)"
)


def generic(*argv: str):
    return make_profile("generic", list(argv))


async def wait_file(path: Path, timeout: float = 10.0) -> None:
    result = await wait_for_output(
        lambda: True if path.exists() and path.stat().st_size else None,
        watch=[path.parent],
        timeout=timeout,
    )
    assert result.done, f"{path} never appeared: {result}"


def test_session_name_is_sanitised(manager: TmuxAgentManager) -> None:
    assert manager.session_name("sm", "1.1") == "bmad-sm-1-1"
    assert manager.session_name("dev", "4.3.1") == "bmad-dev-4-3-1"
    assert manager.session_name("qa", "a:b c/ä;$(x)") == "bmad-qa-a-b-c-----x-"


async def test_spawn_passes_prompt_as_argv_without_a_shell(
    manager: TmuxAgentManager, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")  # the server inherits it; the agent must not
    dump = project / "dump.json"
    prompt = "draft 1.1 $(touch pwned) `id`; echo 'x' \"y\" && rm -rf / #"
    session = await manager.spawn(
        "sm",
        "1.1",
        profile=generic(sys.executable, "-c", ARGV_DUMP),
        prompt=prompt,
        env={"DUMP": str(dump)},
    )
    await wait_file(dump)
    seen = json.loads(dump.read_text())
    assert seen["argv"] == [prompt]
    assert not (project / "pwned").exists()
    assert Path(seen["cwd"]).resolve() == project.resolve()
    env = seen["env"]
    assert env["BMAD_STAGE"] == "sm"
    assert env["BMAD_STORY_ID"] == "1.1"
    assert env["BMAD_PROJECT"] == str(project.resolve())
    assert env["BMAD_RUN_ID"] == manager.run_id
    assert env["BMAD_ATTEMPT"] == "1"
    assert "CLAUDECODE" not in env and "TMUX" not in env
    assert session.name == "bmad-sm-1-1"


async def test_session_shape(manager: TmuxAgentManager) -> None:
    session = await manager.spawn("po", "2.1", profile=generic("sleep", "60"))
    fmt = "#{window_width}x#{window_height} #{history_limit} #{remain-on-exit}"
    out = manager.server.libtmux.cmd("display-message", "-p", "-t", session.pane_id, fmt).stdout[0]
    size, history, remain = out.split()
    assert size == "220x50"
    assert int(history) >= 10000
    assert remain == "on"
    windows = manager.server.libtmux.cmd("list-windows", "-t", f"={session.name}").stdout
    assert len(windows) == 1


async def test_kill_targets_the_exact_name(manager: TmuxAgentManager) -> None:
    short = await manager.spawn("sm", "1.1", profile=generic("sleep", "60"))
    long = await manager.spawn("sm", "1.10", profile=generic("sleep", "60"))
    assert await manager.kill(short.name) is True
    assert not await manager.exists(short.name)
    assert await manager.exists(long.name)
    assert await manager.kill(short.name) is False  # idempotent


async def test_kill_leaves_no_process_behind(manager: TmuxAgentManager, project: Path) -> None:
    state = manager.state_dir
    session = await manager.spawn(
        "dev",
        "3.1",
        profile=make_profile("simulated", simulated_argv("--misbehave", "orphan-child")),
        prompt="go",
    )
    pid_file = state / "simulated" / "orphan-3.1-dev.pid"
    await wait_file(pid_file)
    orphan = int(pid_file.read_text())
    info = await manager.info(session.name)
    assert info is not None and info.pane_pid is not None
    members = session_members(info.pane_pid)
    assert orphan in members and len(members) >= 3  # wrapper, agent, escaped child
    assert os.getpgid(orphan) != info.pane_pid  # it left the process group
    await manager.kill(session.name)
    assert session_members(info.pane_pid) == []
    assert not Path(f"/proc/{orphan}").exists() or "Z" in _proc_state(orphan)


def _proc_state(pid: int) -> str:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "Z"
    return stat_line[stat_line.rindex(")") + 2 :].split()[0]


async def test_early_exit_is_reported_with_status_and_screen(manager: TmuxAgentManager) -> None:
    session = await manager.spawn(
        "qa", "1.2", profile=generic("sh", "-c", "echo 'fatal: no API key'; exit 7")
    )
    result = await wait_for_output(lambda: None, watch=[], probe=manager.probe(session), timeout=20)
    assert result.reason == "agent_gone"
    assert result.exit_status == 7
    assert any("fatal: no API key" in line for line in result.last_screen)
    info = await manager.info(session.name)
    assert info is not None
    assert info.alive is False and info.exit_status == 7
    await manager.kill(session.name)
    screen = session.screen_path.read_text()
    assert "fatal: no API key" in screen


async def test_a_4kb_text_is_typed_as_one_short_line_pointing_to_it_once(
    manager: TmuxAgentManager, project: Path
) -> None:
    record = project / "received.jsonl"
    lines = [
        f"line {i}: /BMad:agents:dev @docs/x.md \"quoted\" 'single' $HOME `tick`" for i in range(70)
    ]
    text = "\n".join(lines)[:4096]
    assert len(text.encode()) >= 4000
    profile = make_profile(
        "simulated", simulated_argv("--record", str(record), "--swallow-enters", "1")
    )
    profile = _typed(profile)
    session = await manager.spawn("dev", "1.1", profile=profile)
    await manager.deliver(session, text, profile)
    received = [json.loads(line)["prompt"] for line in record.read_text().splitlines()]
    assert len(received) == 1  # once: the swallowed Enter was retried, the text was not
    pointer = re.fullmatch(r"Read (\S+) and do what it says\.", received[0])
    assert pointer is not None, received
    assert Path(pointer.group(1)).read_text() == text + "\n"  # the text whole, in its file
    assert Path(pointer.group(1)).stat().st_mode & 0o777 == 0o600
    events = [e for e in manager.events.read() if e["event"] == "deliver"]
    assert events[-1]["enter_presses"] == 2
    assert events[-1]["typed"] < 200


async def test_delivery_fails_loudly_when_enter_is_never_accepted(
    manager: TmuxAgentManager, project: Path
) -> None:
    record = project / "received.jsonl"
    profile = _typed(
        make_profile("simulated", simulated_argv("--record", str(record), "--swallow-enters", "9"))
    )
    session = await manager.spawn("dev", "1.1", profile=profile)
    with pytest.raises(DeliveryError, match="Enter"):
        await manager.deliver(session, "hello there", profile, confirm_timeout=0.5)
    assert not record.exists() or record.read_text() == ""


def _typed(profile):
    from dataclasses import replace

    return replace(profile, prompt_via_argv=False, ready_timeout=20)


async def test_eight_sessions_spawn_concurrently_become_ready_and_die(
    manager: TmuxAgentManager,
) -> None:
    profile = make_profile("simulated", ready_timeout=30)
    stories = [f"8.{i}" for i in range(8)]
    sessions = await asyncio.gather(
        *(manager.spawn("sm", story, profile=_typed(profile)) for story in stories)
    )
    ready = await asyncio.gather(
        *(wait_until_ready(manager.server, s, profile, manager.events) for s in sessions)
    )
    assert ready == [True] * 8
    assert {row.name for row in await manager.list_sessions()} == {s.name for s in sessions}
    killed = await manager.kill_all()
    assert sorted(killed) == sorted(s.name for s in sessions)
    assert await manager.list_sessions() == []


async def test_a_second_manager_lists_inspects_and_adopts(
    manager: TmuxAgentManager, project: Path, socket: str
) -> None:
    session = await manager.spawn("dev", "5.2", profile=generic("sleep", "60"), attempt=2)
    other = TmuxAgentManager(project, socket=socket, prefix="bmad", run_id=manager.run_id)
    rows = await other.list_sessions()
    assert [r.name for r in rows] == [session.name]
    info = await other.info(session.name)
    assert info is not None
    assert (info.stage, info.story_id, info.attempt, info.run_id) == (
        "dev",
        "5.2",
        2,
        manager.run_id,
    )
    assert info.alive and info.exit_status is None and info.pane_pid
    assert abs(info.started_at.timestamp() - session.started_at.timestamp()) < 1
    adopted = await other.spawn("dev", "5.2", profile=generic("sleep", "1"), adopt=True)
    assert adopted.pane_id == session.pane_id and adopted.log_path == session.log_path
    assert (await other.info(session.name)).pane_pid == info.pane_pid  # not restarted
    # A session of another run answers another prompt: it is replaced, never adopted.
    stranger = TmuxAgentManager(project, socket=socket, prefix="bmad")
    replaced = await stranger.spawn("dev", "5.2", profile=generic("sleep", "60"), adopt=True)
    assert not replaced.adopted
    assert (await stranger.info(session.name)).pane_pid != info.pane_pid


async def test_spawn_replaces_a_session_of_the_same_name(manager: TmuxAgentManager) -> None:
    first = await manager.spawn("sm", "1.1", profile=generic("sleep", "60"))
    first_pid = (await manager.info(first.name)).pane_pid
    second = await manager.spawn("sm", "1.1", profile=generic("sleep", "61"), attempt=2)
    assert (await manager.info(second.name)).pane_pid != first_pid
    assert session_members(first_pid) == []
    assert [r.attempt for r in await manager.list_sessions()] == [2]


async def test_logs_and_events_are_owner_only(manager: TmuxAgentManager) -> None:
    session = await manager.spawn(
        "sm", "1.1", profile=generic("sh", "-c", "echo logged-line; sleep 60")
    )
    await wait_for_output(
        lambda: True if "logged-line" in session.log_path.read_text() else None,
        watch=[session.log_path.parent],
        timeout=10,
    )
    await manager.kill(session.name)
    for path in (session.log_path, session.screen_path, manager.events.path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (session.log_path.parent, manager.state_dir / "logs", manager.state_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    kinds = [e["event"] for e in manager.events.read()]
    assert kinds[:1] == ["spawn"] and "kill" in kinds
    assert "logged-line" in session.log_path.read_text()  # survives the kill


async def test_capture_reads_screen_and_scrollback(manager: TmuxAgentManager) -> None:
    script = "for i in $(seq 1 120); do echo row-$i; done; sleep 60"
    session = await manager.spawn("qa", "1.1", profile=generic("sh", "-c", script))
    screen = await wait_for_screen(
        manager.server, session.name, lambda s: any("row-120" in line for line in s), timeout=10
    )
    assert screen is not None
    assert not any(line == "row-1" for line in screen)  # scrolled off the 50-line screen
    history = await manager.capture(session.name, start=-200)
    assert "row-1" in history and "row-120" in history
    window = await manager.capture(session.name, start=-60, end=-50)
    assert len(window) == 11


async def test_send_keys_is_literal(manager: TmuxAgentManager, project: Path) -> None:
    out = project / "typed.txt"
    session = await manager.spawn("dev", "1.1", profile=generic("sh", "-c", f"cat > {out}"))
    await manager.send_keys(session.name, "C-c $(x) 'q'", enter=True)
    await wait_for_output(
        lambda: True if out.exists() and out.read_text() else None, watch=[project], timeout=10
    )
    assert out.read_text() == "C-c $(x) 'q'\n"


async def test_stream_follows_new_output(manager: TmuxAgentManager) -> None:
    session = await manager.spawn(
        "sm", "1.1", profile=generic("sh", "-c", "read x; echo got-$x; sleep 60")
    )
    stream = logs.stream(manager.server, session, from_start=True)
    await manager.send_keys(session.name, "ping", enter=True)

    async def first_match() -> str:
        async for line in stream:
            if "got-ping" in line:
                return line
        return ""

    line = await asyncio.wait_for(first_match(), 10)
    assert line.strip() == "got-ping"
    await stream.aclose()


async def test_cleanup_kills_only_orphans_of_its_own_prefix(
    manager: TmuxAgentManager, project: Path, socket: str
) -> None:
    orphan = spawn_orphan(str(project), socket, "bmad", "sm", "1.1")
    theirs = spawn_orphan(str(project), socket, "other", "sm", "1.1")
    live = await manager.spawn("dev", "1.2", profile=generic("sleep", "60"))
    assert await manager.cleanup_orphans(max_age=3600) == []  # too young
    # The live run's session survives whatever its age: its orchestrator (us) is alive.
    assert await manager.cleanup_orphans(max_age=-1) == [orphan]
    assert await manager.exists(live.name)
    foreign = TmuxAgentManager(project, socket=socket, prefix="other")
    assert await foreign.exists(theirs)
    await foreign.kill(theirs)


def test_attach_instructions_name_the_socket(manager: TmuxAgentManager, socket: str) -> None:
    command = manager.attach_instructions("bmad-sm-1-1")
    assert command == f"tmux -L {socket} attach -r -t =bmad-sm-1-1"


async def test_a_long_prompt_goes_through_a_file(manager: TmuxAgentManager, project: Path) -> None:
    dump = project / "dump.json"
    prompt = "x" * 20000
    await manager.spawn(
        "sm",
        "1.1",
        profile=generic(sys.executable, "-c", ARGV_DUMP),
        prompt=prompt,
        env={"DUMP": str(dump)},
    )
    await wait_file(dump)
    (pointer,) = json.loads(dump.read_text())["argv"]
    path = Path(pointer.split("Read the file ")[1].split(" and follow")[0])
    assert path.read_text() == prompt
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_claude_trust_dialog_is_answered_before_the_agent_works(
    manager: TmuxAgentManager, project: Path
) -> None:
    profile = make_profile(
        "claude", simulated_argv("--trust-dialog", "--input-prompt", "> "), ready_timeout=20
    )
    session = await manager.spawn("sm", "1.1", profile=profile, prompt="/BMad:agents:sm *draft")
    asked = await wait_for_screen(
        manager.server, session.name, lambda s: profile.first_dialog(s) is not None, timeout=20
    )
    assert asked is not None and profile.first_dialog(asked).name == "workspace-trust"
    assert not (project / "docs" / "stories").exists()  # nothing happens before the answer
    assert await wait_until_ready(manager.server, session, profile, manager.events) is True
    dialogs = [e for e in manager.events.read() if e["event"] == "dialog"]
    assert [e["dialog"] for e in dialogs] == ["workspace-trust"]
    await wait_file(project / "docs" / "stories" / "1.1.story.md")


async def test_sessions_started_before_the_stage_rename_are_still_read(
    manager: TmuxAgentManager,
) -> None:
    session = await manager.spawn("dev", "1.1", profile=generic("sleep", "60"))
    target = f"={session.name}:"
    manager.server.run("set-option", "-u", "-t", target, "@bmad-stage")
    manager.server.run("set-option", "-t", target, "@bmad-agent", "dev")  # the old option
    info = await manager.info(session.name)
    assert info is not None and info.stage == "dev"
    assert await manager.kill(session.name) is True


async def test_a_daemon_the_agent_detached_ends_with_its_session_and_no_other_process(
    manager: TmuxAgentManager, project: Path
) -> None:
    # As Codex's app-server does: a child in a process session of its own, which the pane's
    # process session no longer holds. It carries the session's token, so it ends too.
    pidfile = project / "daemon.pid"
    script = f"setsid sleep 300 & echo $! > {pidfile}; exec sleep 300"
    session = await manager.spawn(
        "dev", "1.1", profile=make_profile("generic", ["sh", "-c", script])
    )
    await wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), folder=project)
    daemon = int(pidfile.read_text())
    assert os.getsid(daemon) != os.getsid(0) and alive(daemon)
    bystander = await asyncio.create_subprocess_exec("sleep", "300")  # ours, not the session's
    try:
        await manager.kill(session.name)
        await wait_until(lambda: not alive(daemon), folder=project, timeout=10, what="its end")
        assert bystander.returncode is None
    finally:
        bystander.kill()
        await bystander.wait()
