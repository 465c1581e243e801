"""BMad v6 end to end: real installs made by BMad's own installer (6.10.0, 6.11.0), the CLI, real
tmux and the simulated agent doing what the v6 skills do."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.methods import detect_method, get_method
from orchestrator.methods.bmad_v6 import read_sprint
from tests.helpers import (
    cli,
    events,
    git,
    git_repo,
    report,
    runs,
    sessions_left,
    start_cli,
    stories,
    wait_for_run,
)

IMPL = Path("_bmad-output") / "implementation-artifacts"
KEYS = {"1.1": "1-1-add-a-todo", "1.2": "1-2-list-todos", "1.3": "1-3-complete-a-todo",
        "1.4": "1-4-clear-done-todos"}  # fmt: skip
# As sprint-planning writes it (its template at 6.10.0), for the four stories of epic 1.
SPRINT = (
    "# generated: 11-26-2026 09:00\n# project: todo-cli\n\n# STATUS DEFINITIONS:\n"
    "# ==================\n# Story Status:\n#   - backlog: Story only exists in epic file\n"
    "#   - done: Story completed\n\ngenerated: 01-02-2026 09:00\nlast_updated: 01-02-2026 09:00\n"
    "project: todo-cli\nproject_key: NOKEY\ntracking_system: file-system\n"
    'story_location: "{project-root}/_bmad-output/implementation-artifacts"\n\n'
    "development_status:\n  epic-1: backlog\n"
    + "".join(f"  {key}: backlog\n" for key in KEYS.values())
    + "  epic-1-retrospective: optional\n"
)
EPICS = "# todo-cli - Epic Breakdown\n\n## Epic 1: Everyday todos\n\n" + "".join(
    f"### Story {sid}: {key.split('-', 2)[2].replace('-', ' ').capitalize()}\n\nAs a user.\n\n"
    for sid, key in KEYS.items()
)


def v6_copy(install: Path, folder: Path, epic: dict[str, Any]) -> Path:
    """A copy of a real install with sprint-status, the epics, and an epic.yaml."""
    project = folder / "project"
    shutil.copytree(install, project, symlinks=True)
    (project / IMPL).mkdir(parents=True, exist_ok=True)
    (project / IMPL / "sprint-status.yaml").write_text(SPRINT)
    (project / "_bmad-output" / "planning-artifacts").mkdir(parents=True, exist_ok=True)
    (project / "_bmad-output" / "planning-artifacts" / "epics.md").write_text(EPICS)
    (project / ".gitignore").write_text(".bmad-orchestrator/\n")
    (project / "epic.yaml").write_text(yaml.safe_dump({"project": ".", **epic}, sort_keys=False))
    return project


def sprint_entries(project: Path) -> dict[str, str]:
    return read_sprint(project / IMPL / "sprint-status.yaml").entries


def test_real_installs_are_detected_with_their_paths_and_skills(
    bmad_v6_install: Path, bmad_v6_11_install: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uv = tmp_path / "bin" / "uv"  # build-auto renders through uv: a machine that has it
    uv.parent.mkdir()
    uv.write_text("#!/bin/sh\n")
    uv.chmod(0o755)
    monkeypatch.setenv("PATH", f"{uv.parent}{os.pathsep}{os.environ['PATH']}")
    assert detect_method(bmad_v6_install) == "bmad-v6"
    assert detect_method(bmad_v6_11_install) == "bmad-v6"  # classic skills are still there
    claude = {"sm": "claude", "dev": "claude", "qa": "claude"}
    for install, version in ((bmad_v6_install, "6.10.0"), (bmad_v6_11_install, "6.11.0")):
        project = get_method("bmad-v6").open(install)
        assert project.describe()[0].startswith(f"BMad v6 {version} (classic)")
        problems, _ = project.preflight(agents=claude)
        # The installer makes no sprint-status.yaml: sprint-planning does; nothing else is missing.
        assert len(problems) == 1 and "sprint-planning" in problems[0], problems
    build = get_method("bmad-v6-build")
    assert build.open(bmad_v6_11_install).preflight(agents={"dev": "claude"}) == ([], [])
    problems, _ = build.open(bmad_v6_install).preflight(agents={"dev": "claude"})
    assert any("6.11.0 or newer" in p for p in problems)
    assert any("cannot call bmad-build-auto" in p for p in problems)


def test_a_project_without_sprint_status_is_refused_with_exit_2(
    bmad_v6_install: Path, tmp_path: Path, socket: str
) -> None:
    project = v6_copy(bmad_v6_install, tmp_path, {"stories": ["1.1"], "tmux": {"socket": socket}})
    (project / IMPL / "sprint-status.yaml").unlink()
    path = project / "epic.yaml"
    for argv in (["validate", path], [path, "--dry-run"], [path, "--plain"]):  # as the run says
        result = cli(*argv)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "sprint-planning" in result.stderr and "Traceback" not in result.stderr


def test_classic_epic_runs_create_dev_review_with_a_fix_round_and_menus_answered(
    bmad_v6_install: Path, tmp_path: Path, socket: str
) -> None:
    epic = {
        "stories": ["1.1", "1.2"],
        # 1.1's review stops at its patch menu although the prompt answered it up front.
        "agent": {
            "profile": "simulated",
            "flags": ["--qa-fail", "1.2=1", "--misbehave", "menu", "--misbehave-story", "1.1"],
        },
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    project = v6_copy(bmad_v6_install, tmp_path, epic)
    before = (project / IMPL / "sprint-status.yaml").read_text().splitlines()
    result = cli(project / "epic.yaml", "--plain", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    by_id = stories(report(project))
    assert [by_id[s]["result"] for s in ("1.1", "1.2")] == ["done", "done"]
    assert "po" not in by_id["1.1"]["outcomes"]  # v6 has no PO stage: SM went on to Dev
    assert by_id["1.2"]["qa_fix_rounds"] == 1 and by_id["1.2"]["outcomes"]["qa"] == "PASS"
    assert runs(project)["1.2"] == {"sm": 1, "dev": 2, "qa": 2}
    # code-review stopped at its patch menu; the orchestrator answered it, nobody else.
    nudged = [e for e in events(project) if e["event"] == "nudge"]
    assert {e.get("session") for e in nudged} == {"bmad-qa-1-1"}  # 1.2 followed the prompt
    assert any("Slow query" in item for item in by_id["1.1"]["deferred"])
    # sprint-status, line by line: only the two stories and their epic moved, all to done.
    after = (project / IMPL / "sprint-status.yaml").read_text().splitlines()
    changed = {a: b for a, b in zip(before, after, strict=True) if a != b}
    assert changed == {
        "last_updated: 01-02-2026 09:00": next(x for x in after if x.startswith("last_updated")),
        "  epic-1: backlog": "  epic-1: in-progress",  # 1.3 and 1.4 are still backlog
        f"  {KEYS['1.1']}: backlog": f"  {KEYS['1.1']}: done",
        f"  {KEYS['1.2']}: backlog": f"  {KEYS['1.2']}: done",
    }
    story = (project / IMPL / f"{KEYS['1.2']}.md").read_text()
    assert "Status: done" in story and "- [x] [Review][Patch]" in story
    status = cli("status", project / "epic.yaml", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["story"]: row for row in json.loads(status.stdout)}
    assert [rows[s]["start"] for s in ("1.1", "1.2")] == ["done", "done"]
    assert rows["1.1"]["file"] == str(IMPL / f"{KEYS['1.1']}.md")


def test_build_auto_epic_done_blocked_followup_and_a_missing_result(
    bmad_v6_11_install: Path, tmp_path: Path, socket: str
) -> None:
    flags = ["--followup-review", "1.2=1", "--dev-blocked", "1.3"]
    flags += ["--misbehave", "pieces", "--misbehave-stage", "dev", "--misbehave-story", "1.4"]
    epic = {
        "method": "bmad-v6-build",
        "stories": ["1.1", "1.2", "1.3", "1.4"],
        "agent": {"profile": "simulated", "flags": flags},
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    project = git_repo(v6_copy(bmad_v6_11_install, tmp_path, epic))
    result = cli(project / "epic.yaml", "--plain", timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr  # 1.3 is blocked
    by_id = stories(report(project))
    assert {s: by_id[s]["result"] for s in by_id} == {
        "1.1": "done", "1.2": "done", "1.3": "failed", "1.4": "done",
    }  # fmt: skip
    assert "qa" not in by_id["1.1"]["outcomes"]  # no follow-up recommended: no QA stage
    assert by_id["1.2"]["outcomes"]["qa"] == "PASS"  # follow-up review pass
    assert "intent gap" in by_id["1.3"]["reason"]
    assert runs(project)["1.4"] == {"dev": 1}  # the result section came after a nudge
    assert any(e["event"] == "nudge" and "1-4" in e.get("session", "") for e in events(project))
    assert any("Cache the parsed config" in item for item in by_id["1.1"]["deferred"])
    # Worktrees (build-auto commits its own work): merged into the integration branch, and
    # the orchestrator's own sprint-status moves committed with the stage, once.
    log = git(project, "log", "--format=%s", "bmad/epic")
    assert log.count("simulated build-auto") == 3  # 1.1, 1.2, 1.4: one commit each
    merged = yaml.safe_load(git(project, "show", f"bmad/epic:{IMPL}/sprint-status.yaml"))
    status = merged["development_status"]
    assert [status[KEYS[s]] for s in ("1.1", "1.2", "1.3", "1.4")] == [
        "done", "done", "backlog", "done",
    ]  # fmt: skip
    assert status["epic-1"] == "in-progress"
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""


def test_parallel_v6_stories_in_worktrees_merge_sprint_status_without_a_dev_round(
    bmad_v6_install: Path, tmp_path: Path, socket: str
) -> None:
    epic = {
        "stories": ["1.1", "1.2", "1.3", "1.4"],
        "parallel": 2,
        "agent": {"profile": "simulated", "flags": []},
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    project = git_repo(v6_copy(bmad_v6_install, tmp_path, epic))
    result = cli(project / "epic.yaml", "--plain", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    by_id = stories(report(project))
    assert all(by_id[s]["result"] == "done" for s in KEYS)
    assert all(by_id[s]["merge_rounds"] == 0 for s in KEYS)  # no conflict went to a Dev
    assert all(runs(project)[s]["dev"] == 1 for s in KEYS)
    merged = yaml.safe_load(git(project, "show", f"bmad/epic:{IMPL}/sprint-status.yaml"))
    assert set(merged["development_status"].values()) == {"done", "optional"}  # epic-1 too
    assert sprint_entries(project)["epic-1"] == "backlog"  # the user's checkout: untouched


async def test_resume_after_a_hard_kill_adopts_the_live_v6_dev_session(
    bmad_v6_install: Path, tmp_path: Path, socket: str
) -> None:
    epic = {
        "stories": ["1.1"],
        "agent": {"profile": "simulated"},
        "stages": {"dev": {"agent": {"profile": "simulated", "flags": ["--work-seconds", "3"]}}},
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    project = v6_copy(bmad_v6_install, tmp_path, epic)
    process = start_cli(project / "epic.yaml")
    await wait_for_run(project, "1.1", "dev")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert "bmad-dev-1-1" in await sessions_left(project, socket)  # tmux outlived it

    resumed = cli(project / "epic.yaml", "--resume", "--plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert runs(project)["1.1"] == {"sm": 1, "dev": 1, "qa": 1}  # Dev was not restarted
    (story,) = report(project)["stories"]
    assert [r["adopted"] for r in story["runs"] if r["stage"] == "dev"] == [True]
    assert story["result"] == "done" and sprint_entries(project)[KEYS["1.1"]] == "done"
    assert await sessions_left(project, socket) == []


def test_build_auto_dispatches_a_stories_yaml_by_folder_and_id(
    bmad_v6_11_install: Path, tmp_path: Path, socket: str
) -> None:
    record = tmp_path / "prompts.jsonl"
    epic = {
        "method": "bmad-v6-build",
        "stories": ["1", "2"],
        "agent": {"profile": "simulated", "flags": ["--record", str(record)]},
        "tmux": {"socket": socket, "session_prefix": "bmad"},
    }
    project = v6_copy(bmad_v6_11_install, tmp_path, epic)
    folder = project / "_bmad-output" / "specs" / "spec-rate-limit"
    folder.mkdir(parents=True)
    (folder / "SPEC.md").write_text("# Rate limiting\n")
    (folder / "stories.yaml").write_text(
        '- id: "1"\n  title: Add rate limiting\n  description: A token bucket.\n'
        "  invoke_dev_with: Use the existing Redis client.\n"
        '- id: "2"\n  title: Limiter metrics\n  description: Counters for the dashboard.\n'
    )
    git_repo(project)
    result = cli(project / "epic.yaml", "--plain", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    prompts = [json.loads(line)["prompt"] for line in record.read_text().splitlines()]
    assert prompts[0].startswith(
        "/bmad-build-auto Spec folder: _bmad-output/specs/spec-rate-limit. Story id: 1."
    )
    assert "Use the existing Redis client." in prompts[0]
    files = git(project, "ls-tree", "-r", "--name-only", "bmad/epic", "_bmad-output/specs")
    assert "_bmad-output/specs/spec-rate-limit/stories/1-add-rate-limiting.md" in files
    assert "_bmad-output/specs/spec-rate-limit/stories/2-limiter-metrics.md" in files
    assert {s: r["result"] for s, r in stories(report(project)).items()} == {
        "1": "done",
        "2": "done",
    }


def test_a_sprint_status_alias_bomb_is_refused_in_seconds(
    bmad_v6_install: Path, tmp_path: Path, socket: str
) -> None:
    project = v6_copy(bmad_v6_install, tmp_path, {"stories": ["1.1"], "tmux": {"socket": socket}})
    sprint = project / IMPL / "sprint-status.yaml"
    bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    sprint.write_text(bomb + "development_status: *i\n")
    result = cli(project / "epic.yaml", "--simulate", timeout=60)  # it took minutes at 430 MB
    assert result.returncode == 2, result.stdout + result.stderr
    assert "aliases are expanded" in result.stderr and "Traceback" not in result.stderr
    status = cli("status", project / "epic.yaml", timeout=60)  # and status answers at once
    assert status.returncode == 0 and "Traceback" not in status.stderr
    # ... without a guess: where 1.1 stands depends on the file it could not read.
    (row,) = json.loads(cli("status", project / "epic.yaml", "--json", timeout=60).stdout)
    assert (row["state"], row["start"]) == ("unknown", None), row
    assert "sprint-status.yaml cannot be read" in str(row), row
