"""Hostile input at the tmux level: `#` in paths and ids, dead servers, huge prompts and logs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from orchestrator.agents.profiles import make_profile
from orchestrator.tmux import TmuxAgentManager
from orchestrator.tmux.screen import wait_for_screen
from tests.helpers import alive, orphan_after_server_death, simulated_argv, wait_until

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
        await wait_until(lambda: b"marker" in session.log_path.read_bytes(), folder=folder)
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


async def test_what_a_vanished_session_left_is_killed_with_it(project: Path, socket: str) -> None:
    manager, name, orphan = await orphan_after_server_death(project, socket)
    assert await manager.kill(name) is False  # no tmux session any more...
    await wait_until(lambda: not alive(orphan), folder=manager.state_dir, timeout=10)
    assert not (manager.state_dir / "run" / f"{name}.proc.json").exists()


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
    await wait_until(record.exists, folder=tmp_path)
    received = json.loads(record.read_text().splitlines()[0])["prompt"]
    assert received.startswith("Read the file ")
    pointer = Path(received.removeprefix("Read the file ").split(" and follow")[0])
    assert pointer.read_text() == prompt
    assert stat.S_IMODE(pointer.stat().st_mode) == 0o600
    assert await manager.exists(session.name)


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


async def test_prompt_via_file_keeps_prompts_out_of_the_process_table(
    manager: TmuxAgentManager, tmp_path: Path
) -> None:
    record = tmp_path / "prompts.jsonl"
    profile = make_profile("simulated", simulated_argv("--record", str(record)), prompt_via="file")
    session = await manager.spawn("sm", "1.1", profile=profile, prompt="secret plan 42")
    await wait_until(record.exists, folder=tmp_path)
    info = await manager.info(session.name)
    assert info is not None and info.pane_pid is not None
    everything = b"".join(
        Path(f"/proc/{pid}/cmdline").read_bytes()
        for pid in (info.pane_pid, *_children(info.pane_pid))
    )
    assert b"secret plan 42" not in everything and b"Read the file" in everything


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
        await wait_until(lambda: b"THE-END" in log.read_bytes(), folder=log.parent, timeout=60)
        data = log.read_bytes()
        assert len(data) <= 256 * 1024 + 200
        assert data.startswith(b"[bmad-orchestrator: ") and b"bytes of earlier output cut" in data
        assert b"line-9999-" in data and b"line-0-" not in data
    finally:
        await manager.kill_all()
        manager.server.kill()
