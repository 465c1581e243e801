"""Hostile but realistic use: a second run, `#` in paths, planted links, edited epics, hang-ups,
dead tmux servers, huge prompts and logs, bad ids. Real tmux, real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import sys
from pathlib import Path

import libtmux
import pytest
import yaml

from orchestrator.agents.profiles import make_profile
from orchestrator.app.config import load_epic
from orchestrator.app.runs import load_records
from orchestrator.errors import StateDirError
from orchestrator.files import StateDir
from orchestrator.tmux import TmuxAgentManager, socket_path
from orchestrator.tmux.screen import wait_for_screen
from orchestrator.watch import wait_for_output
from tests.helpers import (
    DEMO,
    cli,
    report,
    runs,
    sessions_left,
    simulated_argv,
    start_cli,
    stories,
    wait_for_run,
    write_epic,
)

HANG_DEV = ["--misbehave", "hang", "--misbehave-stage", "dev"]


def hanging_epic(demo: Path, socket: str, **overrides: object) -> Path:
    """Stories 1.1 and 1.3, one at a time; Dev of the first run hangs until killed."""
    flags = [*HANG_DEV, "--misbehave-story", "1.1", "--misbehave-times", "1"]
    settings: dict[str, object] = {
        "parallel": 1,
        "stories": ["1.1", "1.3"],
        "agent": {"profile": "simulated", "flags": flags},
    }
    settings.update(overrides)
    return write_epic(demo, socket, **settings)


async def wait_for(predicate, *, folder: Path, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    result = await wait_for_output(
        lambda: True if predicate() else None, watch=[folder], timeout=timeout
    )
    assert result.done, "condition never held"


# --- 1. one run at a time ------------------------------------------------------------------------


async def test_a_second_run_of_a_live_epic_is_refused_and_readers_still_work(
    demo: Path, socket: str
) -> None:
    epic = hanging_epic(demo, socket)
    holder = start_cli(epic)
    try:
        await wait_for_run(demo, "1.1", "dev")
        second = cli(epic)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"pid {holder.pid}" in second.stderr and "holds" in second.stderr
        resumed = cli(epic, "--resume")
        assert resumed.returncode == 2 and f"pid {holder.pid}" in resumed.stderr
        # Readers do not take the lock.
        assert cli("validate", epic).returncode == 0
        assert cli(epic, "--dry-run").returncode == 0
        listed = cli("sessions", epic)
        assert listed.returncode == 0 and "bmad-dev-1-1" in listed.stdout
        assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1}  # the refused runs ran nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    # The kernel released the lock with the process (no stale lock): a resume goes ahead.
    await TmuxAgentManager(demo, socket=socket).kill_all()  # the hanging Dev, to be run again
    resumed = cli(epic, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert runs(demo)["1.1"]["qa"] == 1
    assert await sessions_left(demo, socket) == []


# --- 2. tmux formats ---------------------------------------------------------------------------

HOSTILE_NAMES = ["p#(touch PWNED)x", "s#S#W", "C#Sharp"]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
async def test_hash_signs_in_project_and_state_paths_reach_tmux_as_text(
    tmp_path: Path, socket: str, hostile: str
) -> None:
    project = tmp_path / hostile / "project"
    (project / ".bmad-core").mkdir(parents=True)
    state_dir = tmp_path / f"state-{hostile}"
    manager = TmuxAgentManager(project, socket=socket, state_dir=state_dir)
    try:
        # Story ids reach tmux too (Studio passes them unchecked): C#Sharp as the story id.
        session = await manager.spawn(
            "dev",
            hostile,
            profile=make_profile("generic", ["sh", "-c", 'pwd; echo "marker $0"; sleep 30']),
        )
        folder = session.log_path.parent
        await wait_for(lambda: b"marker" in session.log_path.read_bytes(), folder=folder)
        log = session.log_path.read_text()
        assert str(project) in log  # the agent started in the real folder, not an expansion
        assert session.log_path.parent == state_dir / "logs" / manager.run_id
        assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()
        info = await manager.info(session.name)
        assert info is not None and info.story_id == hostile
        # Typed input goes through load-buffer, whose path is format-expanded too.
        agent = await manager.spawn("qa", "1.1", profile=make_profile("simulated"))
        await manager.deliver(agent, "hello #S #(touch PWNED)", make_profile("simulated"))
        screen = await wait_for_screen(
            manager.server,
            agent.name,
            lambda s: any("received prompt" in line for line in s),
            timeout=10,
        )
        assert screen is not None
        assert not list(tmp_path.rglob("PWNED"))
    finally:
        await manager.kill_all()
        manager.server.kill()


async def test_a_whole_run_in_a_project_path_with_hash_signs(tmp_path: Path, socket: str) -> None:
    demo = tmp_path / "C#Sharp #(touch PWNED) #S"
    shutil.copytree(DEMO, demo)
    result = cli(write_epic(demo, socket, stories=["1.1"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert stories(report(demo))["1.1"]["result"] == "done"
    logs = list((demo / ".bmad-orchestrator" / "logs").rglob("*.log"))
    assert logs and all(path.stat().st_size > 0 for path in logs)
    assert not list(tmp_path.rglob("PWNED"))


# --- 3. the state dir --------------------------------------------------------------------------


def test_a_shared_state_dir_is_refused_and_left_as_it_was(demo: Path, socket: str) -> None:
    shared = demo.parent / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    result = cli(write_epic(demo, socket, state_dir=str(shared)))
    assert result.returncode == 2
    assert "writable by others" in result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert list(shared.iterdir()) == []
    assert not libtmux.Server(socket_name=socket).is_alive()


def test_the_project_root_as_state_dir_keeps_its_mode(demo: Path, socket: str) -> None:
    os.chmod(demo, 0o755)
    result = cli(write_epic(demo, socket, state_dir=".", stories=["1.1"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert stat.S_IMODE(demo.stat().st_mode) == 0o755
    assert stat.S_IMODE((demo / "logs").stat().st_mode) == 0o700


@pytest.mark.parametrize("planted", ["events.jsonl", "logs", "run.lock", "runs"])
def test_links_planted_in_the_state_dir_are_refused_not_followed(
    demo: Path, socket: str, planted: str
) -> None:
    victim = demo.parent / "victim"
    victim.mkdir()
    bashrc = victim / "bashrc"
    bashrc.write_text("echo hi\n")
    os.chmod(bashrc, 0o644)
    state = demo / ".bmad-orchestrator"
    state.mkdir()
    target = bashrc if planted in ("events.jsonl", "run.lock") else victim
    (state / planted).symlink_to(target)
    result = cli(write_epic(demo, socket))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "symbolic link" in result.stderr
    assert bashrc.read_text() == "echo hi\n" and stat.S_IMODE(bashrc.stat().st_mode) == 0o644
    assert sorted(p.name for p in victim.iterdir()) == ["bashrc"]
    assert not libtmux.Server(socket_name=socket).is_alive()


def test_a_state_dir_that_is_a_link_or_not_ours_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(StateDirError, match="symbolic link"):
        StateDir(link).prepare()
    if os.geteuid() == 0:  # root owns "/": give a folder to someone else instead
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        os.chown(other, 1234, 1234)
    else:
        other = Path("/")
    with pytest.raises(StateDirError, match="not to you"):
        StateDir(other).prepare()


def test_an_unwritable_state_dir_is_a_message_not_a_traceback(demo: Path, socket: str) -> None:
    (demo / "a-file").write_text("")
    result = cli(write_epic(demo, socket, state_dir="a-file/state"))
    assert result.returncode == 2
    assert "cannot create" in result.stderr and "Traceback" not in result.stderr


# --- 4. resuming an edited epic ----------------------------------------------------------------


async def test_resume_of_an_edited_epic_refuses_then_accepts_changes(
    demo: Path, socket: str
) -> None:
    epic = write_epic(
        demo,
        socket,
        parallel=2,
        stories=["1.1", "1.3"],
        agent={"profile": "simulated", "flags": [*HANG_DEV, "--misbehave-story", "1.3"]},
    )
    process = start_cli(epic)
    await wait_for_run(demo, "1.3", "dev")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert "bmad-dev-1-3" in await sessions_left(demo, socket)

    config = yaml.safe_load(epic.read_text())
    config["stories"] = ["1.1", {"id": "1.2", "depends_on": ["1.1"]}]
    config["max_fix_rounds"] = 3
    epic.write_text(yaml.safe_dump(config, sort_keys=False))
    refused = cli(epic, "--resume")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    for change in ("story 1.2 added", "story 1.3 removed", "max_fix_rounds changed"):
        assert change in refused.stderr
    assert "--accept-changes" in refused.stderr
    assert "bmad-dev-1-3" in await sessions_left(demo, socket)  # nothing was touched

    accepted = cli(epic, "--resume", "--accept-changes")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    by_id = stories(report(demo))
    assert {k: v["result"] for k, v in by_id.items()} == {"1.1": "done", "1.2": "done"}
    assert await sessions_left(demo, socket) == []  # 1.3's session was killed, not orphaned
    (record,) = load_records(demo / ".bmad-orchestrator")
    assert record.finished and record.stories == ["1.1", "1.2"]


# --- 5. SIGHUP ---------------------------------------------------------------------------------


async def test_sighup_ends_the_run_like_sigterm(demo: Path, socket: str) -> None:
    epic = hanging_epic(demo, socket)
    process = start_cli(epic)
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGHUP)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    data = report(demo)
    assert data["interrupted"] and data["exit_code"] == 130
    assert await sessions_left(demo, socket) == []
    (record,) = load_records(demo / ".bmad-orchestrator")
    assert record.interrupted and not record.finished
    resumed = cli(epic, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


# --- 6. descendants of a vanished session ------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


async def _orphan_after_server_death(
    project: Path, socket: str
) -> tuple[TmuxAgentManager, str, int]:
    manager = TmuxAgentManager(project, socket=socket)
    argv = simulated_argv("--misbehave", "orphan-child", "--ignore-sighup")
    session = await manager.spawn(
        "dev", "1.1", profile=make_profile("simulated", argv), prompt="work"
    )
    pid_file = manager.state_dir / "simulated" / "orphan-1.1-dev.pid"
    await wait_for(pid_file.exists, folder=manager.state_dir)
    orphan = int(pid_file.read_text())
    manager.server.kill()  # the tmux server dies; the orphan ignores SIGHUP and lives on
    assert _alive(orphan)
    return manager, session.name, orphan


async def test_what_a_vanished_session_left_is_killed_with_it(project: Path, socket: str) -> None:
    manager, name, orphan = await _orphan_after_server_death(project, socket)
    assert await manager.kill(name) is False  # no tmux session any more...
    await wait_for(lambda: not _alive(orphan), folder=manager.state_dir, timeout=10)
    assert not (manager.state_dir / "run" / f"{name}.proc.json").exists()


async def test_cleanup_kills_what_a_dead_server_left(project: Path, socket: str) -> None:
    epic = project / "epic.yaml"
    epic.write_text(
        yaml.safe_dump({"stories": ["1.1"], "tmux": {"socket": socket}, "project": "."})
    )
    manager, name, orphan = await _orphan_after_server_death(project, socket)
    # The spawning process is this test; cleanup only reaps records whose owner is gone.
    record = manager.state_dir / "run" / f"{name}.proc.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "owner": "1:0"}))
    result = cli("cleanup", epic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"killed what was left of {name}" in result.stdout
    assert not _alive(orphan)


# --- 7. prompts count bytes --------------------------------------------------------------------


async def test_a_prompt_of_many_multibyte_characters_goes_through_a_file(
    manager: TmuxAgentManager, tmp_path: Path
) -> None:
    record = tmp_path / "prompts.jsonl"
    prompt = "→" * 7000  # 7000 characters, 21000 bytes
    session = await manager.spawn(
        "sm",
        "1.1",
        profile=make_profile("simulated", simulated_argv("--record", str(record))),
        prompt=prompt,
    )
    await wait_for(record.exists, folder=tmp_path)
    received = json.loads(record.read_text().splitlines()[0])["prompt"]
    assert received.startswith("Read the file ")
    pointer = Path(received.removeprefix("Read the file ").split(" and follow")[0])
    assert pointer.read_text() == prompt
    assert stat.S_IMODE(pointer.stat().st_mode) == 0o600
    assert await manager.exists(session.name)


async def test_prompt_via_file_keeps_prompts_out_of_the_process_table(
    manager: TmuxAgentManager, tmp_path: Path
) -> None:
    record = tmp_path / "prompts.jsonl"
    profile = make_profile("simulated", simulated_argv("--record", str(record)), prompt_via="file")
    session = await manager.spawn("sm", "1.1", profile=profile, prompt="secret plan 42")
    await wait_for(record.exists, folder=tmp_path)
    info = await manager.info(session.name)
    assert info is not None and info.pane_pid is not None
    everything = b"".join(
        Path(f"/proc/{pid}/cmdline").read_bytes()
        for pid in (info.pane_pid, *_children(info.pane_pid))
    )
    assert b"secret plan 42" not in everything and b"Read the file" in everything


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


# --- 8, 9, 11: input the config refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"stages": {"qa": {"prompt": "review {story_id:%}"}}}, "stages.qa.prompt"),
        ({"stages": {"qa": {"prompt": "review {story_id"}}}, "cannot be rendered"),
        ({"stories": ["1/1"]}, "stories[0]"),
        ({"stories": ["1..1"]}, "may only hold"),
        ({"stories": ["1.1;"]}, "may only hold"),
        ({"stories": ["1.1&"]}, "may only hold"),
        ({"stories": ["C#Sharp"]}, "may only hold"),
        ({"stories": ["1" * 65]}, "longer than 64"),
        ({"logs": {"max_size": "lots"}}, "logs.max_size"),
    ],
)
def test_input_that_would_fail_later_is_refused_by_validate(
    demo: Path, socket: str, change: dict[str, object], expected: str
) -> None:
    epic = write_epic(demo, socket, **change)
    for args in (("validate", epic), (epic,)):
        result = cli(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stories: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        (BILLION_LAUGHS + "stories: *i\n", "YAML aliases are expanded"),
    ],
)
def test_hostile_yaml_is_a_message(tmp_path: Path, text: str, expected: str) -> None:
    epic = tmp_path / "epic.yaml"
    epic.write_text(text)
    result = cli("validate", epic, timeout=30)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_hostile_core_config_is_a_message(demo: Path, socket: str) -> None:
    (demo / ".bmad-core" / "core-config.yaml").write_text("qa: " + "[" * 5000 + "]" * 5000)
    result = cli(write_epic(demo, socket))
    assert result.returncode == 2
    assert "core-config.yaml: not valid YAML" in result.stderr


@pytest.mark.parametrize(
    ("core_config", "key"),
    [
        ("devStoryLocation: ../outside\n", "devStoryLocation"),
        ("qa:\n  qaLocation: /tmp\n", "qa.qaLocation"),
    ],
)
def test_story_and_qa_folders_outside_the_project_are_refused(
    demo: Path, socket: str, core_config: str, key: str
) -> None:
    (demo / ".bmad-core" / "core-config.yaml").write_text(core_config)
    result = cli(write_epic(demo, socket))
    assert result.returncode == 2
    assert key in result.stderr and "outside the project" in result.stderr
    assert not libtmux.Server(socket_name=socket).is_alive()


def test_read_only_commands_write_nothing_in_the_current_folder(
    tmp_path: Path, socket: str
) -> None:
    import subprocess

    from tests.helpers import REPO

    for args in (["sessions"], ["attach", "1.1", "--print"], ["cleanup"]):
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args, "--socket", socket],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


# --- 10. checkpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_a_broken_checkpoint_is_set_aside_and_a_new_run_starts_from_the_files(
    demo: Path, socket: str, damage: str
) -> None:
    epic = hanging_epic(demo, socket)
    process = start_cli(epic)
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    checkpoint = demo / ".bmad-orchestrator" / "checkpoints.sqlite"
    with sqlite3.connect(checkpoint) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "garbage":
        with checkpoint.open("r+b") as handle:
            handle.write(b"this is not a database" * 100)
    else:
        checkpoint.write_bytes(b"")

    refused = cli(epic, "--resume")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert ("corrupt" if damage == "garbage" else "truncated") in refused.stderr
    assert "without --resume" in refused.stderr
    (aside,) = [
        path
        for path in checkpoint.parent.glob("checkpoints.sqlite.corrupt-*")
        if not path.name.endswith(("-wal", "-shm"))
    ]
    kept = aside.read_bytes()
    assert kept == b"" if damage == "truncated" else kept.startswith(b"this is not a database")

    fresh = cli(epic)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "did not finish" not in fresh.stdout  # the abandoned run is not offered for resume
    by_id = stories(report(demo))
    assert by_id["1.1"]["result"] == "done" and by_id["1.3"]["result"] == "done"
    # 1.1 was Approved by the first run: the new run started it at Dev, from its file.
    assert runs(demo)["1.1"]["sm"] == 1 and runs(demo)["1.1"]["dev"] == 2


# --- 12. the smaller ones ----------------------------------------------------------------------


async def test_a_flooding_agent_leaves_a_capped_log_with_its_tail(
    project: Path, socket: str
) -> None:
    manager = TmuxAgentManager(project, socket=socket, log_max_bytes=256 * 1024)
    try:
        flood = "i=0; while [ $i -lt 10000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx$i;"
        flood += " i=$((i+1)); done; echo THE-END; sleep 30"
        session = await manager.spawn(
            "dev", "1.1", profile=make_profile("generic", ["sh", "-c", flood])
        )
        log = session.log_path
        await wait_for(lambda: b"THE-END" in log.read_bytes(), folder=log.parent, timeout=60)
        data = log.read_bytes()
        assert len(data) <= 256 * 1024 + 200
        assert data.startswith(b"[bmad-orchestrator: ") and b"bytes of earlier output cut" in data
        assert b"line-9999-" in data and b"line-0-" not in data
    finally:
        await manager.kill_all()
        manager.server.kill()


async def test_a_run_leaves_no_tmux_socket_file(demo: Path, socket: str) -> None:
    result = cli(write_epic(demo, socket, stories=["1.1"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not socket_path(socket).exists()


def test_config_paths_stay_unresolved_so_links_are_seen(demo: Path, socket: str) -> None:
    real = demo.parent / "elsewhere"
    real.mkdir(mode=0o700)
    (demo / "state-link").symlink_to(real)
    config = load_epic(write_epic(demo, socket, state_dir="state-link"))
    assert config.state_dir == demo / "state-link"
    with pytest.raises(StateDirError):
        StateDir(config.state_dir).prepare()


def test_state_dir_audit_only_looks_at_the_orchestrators_own_entries(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir(mode=0o700)
    (root / "node_modules").mkdir()
    (root / "node_modules" / "link").symlink_to(tmp_path)  # not ours to judge
    StateDir(root).audit()
    (root / "logs").mkdir(mode=0o700)
    (root / "logs" / "x.log").symlink_to(tmp_path / "x")
    with pytest.raises(StateDirError, match="symbolic link"):
        StateDir(root).audit()


# --- what already held, kept holding -----------------------------------------------------------


async def test_sigint_twice_still_ends_cleanly(demo: Path, socket: str) -> None:
    process = start_cli(hanging_epic(demo, socket))
    await wait_for_run(demo, "1.1", "dev")
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert await sessions_left(demo, socket) == []
    assert report(demo)["interrupted"]


async def test_thirty_stories_at_parallel_thirty(demo: Path, socket: str) -> None:
    ids = [f"2.{n}" for n in range(1, 31)]
    result = cli(write_epic(demo, socket, stories=ids, parallel=30, agent={"profile": "simulated"}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert {s["result"] for s in report(demo)["stories"]} == {"done"}
    assert all(runs(demo)[story] == {"sm": 1, "po": 1, "dev": 1, "qa": 1} for story in ids)
    assert await sessions_left(demo, socket) == []
