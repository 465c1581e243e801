"""Hostile but realistic use: a second run, `#` in paths, planted links, edited epics, hang-ups,
dead tmux servers, huge prompts and logs, bad ids. Real tmux, real processes."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.app.runs import load_records
from orchestrator.methods import get_method
from orchestrator.methods.bmad_v4.rehearsal import draft_story
from orchestrator.tmux import TmuxAgentManager, TmuxServer, socket_path
from tests.helpers import (
    DEMO,
    REPO,
    alive,
    cli,
    dripping_server,
    events,
    git,
    git_repo,
    orphan_after_server_death,
    report,
    runs,
    sessions_left,
    start_cli,
    stories,
    wait_for_run,
    wait_until,
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
    assert not TmuxServer(socket).alive()


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
    assert not TmuxServer(socket).alive()


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


async def test_sigterm_ends_the_run_in_seconds_while_a_webhook_drips(
    demo: Path, socket: str
) -> None:
    with dripping_server() as url:
        notify = {"webhook": url, "events": ["story_done"], "timeout": 120}
        epic = hanging_epic(demo, socket, stories=["1.3", "1.1"], notify=notify)
        process = start_cli(epic)
        await wait_for_run(demo, "1.1", "dev")  # 1.3 is done: its notice is dripping
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)  # it used to take minutes
    assert process.returncode == 130, out + err
    assert report(demo)["interrupted"]
    assert await sessions_left(demo, socket) == []
    assert [e for e in events(demo) if e["event"] == "notify-abandoned"]
    assert "secret-pw" not in out + err


async def test_sigterm_ends_the_run_in_seconds_while_git_hangs(demo: Path, socket: str) -> None:
    """A clean filter of the repository's own that never returns holds the commit after SM."""
    epic = write_epic(
        demo, socket, stories=["1.1"], isolation="worktree", agent={"profile": "simulated"}
    )
    (demo / ".gitignore").write_text(".bmad-orchestrator/\n.bmad-core/\n")
    (demo / ".gitattributes").write_text("docs/stories/*.md filter=stuck\n")
    git_repo(demo)
    marker = demo.parent / "filter.pid"
    git(demo, "config", "filter.stuck.clean", f"echo $$ > {marker}; exec sleep 1000")
    process = start_cli(epic, "--plain")
    await wait_until(
        lambda: marker.exists() and marker.read_text().strip(),
        folder=demo.parent,
        timeout=120,
        what="the commit after SM reaching the filter",
    )
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)  # a thread in git once kept the process alive
    assert process.returncode == 130, out + err
    assert report(demo)["interrupted"]
    pid = int(marker.read_text())
    await wait_until(lambda: not alive(pid), folder=demo.parent, timeout=10, what="filter gone")
    assert not list((demo / ".git").rglob("index.lock"))
    assert await sessions_left(demo, socket) == []


async def test_a_draft_written_just_before_a_crash_and_a_reboot_is_taken_not_redone(
    demo: Path, socket: str
) -> None:
    """SM wrote its draft, then the orchestrator and tmux died before it was recorded. The
    re-run SM rewrote the same bytes, which looked like no output: the story failed."""
    epic = write_epic(
        demo,
        socket,
        stories=["1.1"],
        agent={"profile": "simulated", "flags": ["--misbehave", "hang", "--misbehave-stage", "sm",
                                                  "--misbehave-times", "1"]},
    )  # fmt: skip
    first = start_cli(epic, "--plain")
    try:
        await wait_for_run(demo, "1.1", "sm")
        project = get_method("bmad-v4").open(demo)
        draft_story(project.paths, "1.1", pieces=False, partial=False)  # what the SM wrote
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    TmuxServer(socket).kill()  # the reboot: every session and its options are gone

    resumed = cli(epic, "--resume", "--plain")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}
    (sm,) = [r for r in stories(report(demo))["1.1"]["runs"] if r["stage"] == "sm"]
    assert sm["outcome"] == "drafted" and "not run again" in " ".join(sm["warnings"])
    assert await sessions_left(demo, socket) == []


def _can_mount_a_small_disk() -> bool:
    """Whether this user may mount a tmpfs in a namespace of its own (`unshare -rm`)."""
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.mark.skipif(not _can_mount_a_small_disk(), reason="cannot mount a tmpfs (unshare -rm)")
@pytest.mark.parametrize("kilobytes", [100, 160, 240])  # full at SM, at PO, at Dev or QA
def test_a_full_disk_ends_the_run_with_a_sentence_and_resume_finishes_it(
    demo: Path, socket: str, tmp_path: Path, kilobytes: int
) -> None:
    """The state dir on a disk that fills mid-run (a small tmpfs), then grows: once an internal
    error, or a story reported failed by the resume."""
    state, out = tmp_path / "state", tmp_path / "out"
    state.mkdir(), out.mkdir()
    epic = write_epic(
        demo, socket, stories=["1.1"], state_dir=str(state), agent={"profile": "simulated"}
    )
    run = shlex.join([sys.executable, "-m", "orchestrator", str(epic), "--plain"])
    q = {name: shlex.quote(str(path)) for name, path in (("state", state), ("out", out))}
    script = f"""
        mount -t tmpfs -o size={kilobytes}k,mode=700 tmpfs {q["state"]} || exit 99
        {run} > {q["out"]}/first.txt 2>&1; echo $? > {q["out"]}/first.rc
        tmux -L {shlex.quote(socket)} ls -F '#{{session_name}}' > {q["out"]}/left.txt 2>/dev/null
        mount -o remount,size=16m {q["state"]}
        {run} --resume > {q["out"]}/second.txt 2>&1; echo $? > {q["out"]}/second.rc
        cp {q["state"]}/simulated/runs.json {q["out"]}/runs.json
    """
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, timeout=300)
    assert done.returncode == 0
    first, second = (out / "first.txt").read_text(), (out / "second.txt").read_text()
    assert (out / "first.rc").read_text().strip() == "2", first
    assert "error: the disk is full" in first and "--resume" in first, first
    assert "Traceback" not in first and "internal error" not in first, first
    assert (out / "left.txt").read_text() == ""  # no session left behind
    assert (out / "second.rc").read_text().strip() == "0", second
    assert "1.1: done" in second, second
    ran = json.loads((out / "runs.json").read_text())["1.1"]
    assert set(ran) == {"sm", "po", "dev", "qa"}, ran


# --- 6. descendants of a vanished session ------------------------------------------------------


async def test_cleanup_kills_what_a_dead_server_left(project: Path, socket: str) -> None:
    epic = project / "epic.yaml"
    epic.write_text(
        yaml.safe_dump({"stories": ["1.1"], "tmux": {"socket": socket}, "project": "."})
    )
    manager, name, orphan = await orphan_after_server_death(project, socket)
    # The spawning process is this test; cleanup only reaps records whose owner is gone.
    record = manager.state_dir / "run" / f"{name}.proc.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "owner": "1:0"}))
    result = cli("cleanup", epic)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"killed what was left of {name}" in result.stdout
    assert not alive(orphan)


# --- 7. prompts count bytes --------------------------------------------------------------------


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
        ({"isolation": "sandbox"}, "isolation: Input should be 'worktree' or 'shared'"),
        (
            {"git": {"branch": "--upload-pack=evil"}},
            "git.branch: '--upload-pack=evil' is not a valid",
        ),
        ({"git": {"branch": "bmad/a..b"}}, "is not a valid git branch name"),
        ({"git": {"branch": "bmad/x y"}}, "is not a valid git branch name"),
        ({"git": {"merge_into": "main.lock"}}, "git.merge_into"),
        ({"git": {"setup": [[]]}}, "a setup command needs at least a program name"),
        ({"git": {"setup": "npm ci"}}, "git.setup"),
        ({"max_merge_rounds": -1}, "max_merge_rounds"),
        ({"stories": ["1.1\n"]}, "may only hold"),
        ({"stories": ["x.lock"]}, "may not end in '.lock'"),
        ({"state_dir": "st\nsrc"}, "state_dir: 'st\\nsrc' holds a control character"),
        ({"tmux": {"socket": ".."}}, "is a folder, not a socket name"),
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
    assert not TmuxServer(socket).alive()


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


async def test_a_run_leaves_no_tmux_socket_file(demo: Path, socket: str) -> None:
    result = cli(write_epic(demo, socket, stories=["1.1"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not socket_path(socket).exists()


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


# --- a branch or a Postgres URL git or libpq would refuse -----------------------------------------

PG_SECRET = "Sekrit99"
SECRET_PIECES = (PG_SECRET, PG_SECRET[:3], PG_SECRET[3:])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"git": {"branch": "HEAD"}}, "git.branch: 'HEAD' is not a valid git branch name"),
        ({"git": {"merge_into": "HEAD"}}, "git.merge_into: 'HEAD' is not a valid git branch"),
        (
            {"checkpointer": f"postgresql://u:{PG_SECRET}@db.example:99999/db"},
            "checkpointer: port '99999' is not a number from 1 to 65535",
        ),
        (
            {"checkpointer": f"postgresql://u:{PG_SECRET}@db.example:abc/db"},
            "checkpointer: port 'abc' is not a number",
        ),
        (
            {"checkpointer": f"postgresql://u:{PG_SECRET}@[::1/db"},
            "checkpointer: the host's '[' has no closing ']'",
        ),
        (
            {"checkpointer": f"postgresql://u:{PG_SECRET[:3]}/{PG_SECRET[3:]}@db.example/db"},
            "checkpointer: the user name or password holds a raw '/', '?' or '#'",
        ),
        (
            {"checkpointer": f"postgresql://u:{PG_SECRET[:3]}#{PG_SECRET[3:]}@db.example/db"},
            "checkpointer: the user name or password holds a raw '/', '?' or '#'",
        ),
    ],
)
def test_a_branch_or_postgres_url_git_or_libpq_refuses_is_refused_at_load(
    demo: Path, socket: str, change: dict[str, object], expected: str
) -> None:
    epic = write_epic(demo, socket, isolation="worktree", **change)
    for args in (("validate", epic), (epic, "--dry-run"), (epic,)):
        result = cli(*args)
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert expected in result.stderr and "Traceback" not in output
        assert not any(piece in output for piece in SECRET_PIECES)
    assert not TmuxServer(socket).alive()


def test_a_malformed_postgres_url_in_the_named_variable_is_refused_without_it(
    demo: Path, socket: str
) -> None:
    url = f"postgresql://u:{PG_SECRET[:3]}/{PG_SECRET[3:]}@db.example:5432/db"
    epic = write_epic(demo, socket, checkpointer="$BMAD_TEST_PG_URL")
    result = cli(epic, env={"BMAD_TEST_PG_URL": url})
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "checkpointer: BMAD_TEST_PG_URL: the user name or password holds" in result.stderr
    assert "Traceback" not in output
    assert not any(piece in output for piece in SECRET_PIECES)
    assert not TmuxServer(socket).alive()
