"""When a person is needed: gates pause stories (LangGraph interrupts), approve / reject / reply
resume them, other stories run on meanwhile, and notices reach a real HTTP server and a command.

The CLI in subprocesses, real tmux on a private socket, the simulated agent driving the stages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.defaults import ExitCode
from tests.helpers import (
    cli,
    events,
    recorded_prompts,
    report,
    runs,
    start_cli,
    stories,
    wait_until,
    write_epic,
)

SECRET = "T0KEN-s3cret-path"


def epic(demo: Path, socket: str, *sim: str, **overrides: Any) -> Path:
    """The demo epic, story 1.1 only unless told, the simulated agent recording its prompts."""
    flags = ["--record", str(demo.parent / "prompts.jsonl"), *sim]
    overrides.setdefault("stories", ["1.1"])
    overrides.setdefault("agent", {"profile": "simulated", "flags": flags})
    return write_epic(demo, socket, **overrides)


def waiting_for(demo: Path) -> dict[str, Any]:
    (story,) = [s for s in stories(report(demo)).values() if s["result"] == "waiting"]
    return story


def test_after_po_a_story_waits_with_exit_3_and_approve_lets_it_go_on(
    demo: Path, socket: str
) -> None:
    path = epic(demo, socket, gates=["after_po"])

    first = cli(path, "--plain")

    assert first.returncode == ExitCode.WAITING, first.stdout + first.stderr
    story = waiting_for(demo)
    assert story["waiting"]["gate"] == "after_po" and "Approve to start Dev" in story["reason"]
    assert story["waiting"]["answer"][0] == f"python -m orchestrator approve {path} 1.1"
    assert f"answer with:\n    python -m orchestrator approve {path} 1.1" in first.stdout
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1}  # Dev spent nothing yet
    (row,) = json.loads(cli("status", path, "--json").stdout)
    assert row["waiting"]["gate"] == "after_po" and row["waiting"]["question"]
    again = cli(path, "--resume", "--plain")  # nothing answered: still waiting, nothing re-run
    assert again.returncode == ExitCode.WAITING and runs(demo)["1.1"] == {"sm": 1, "po": 1}

    approved = cli("approve", path, "1.1", "--note", "ship it")

    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "approve recorded for story 1.1 (after_po)" in approved.stdout
    done = stories(report(demo))["1.1"]
    assert done["result"] == "done"
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}
    (gate,) = done["gates"]
    assert (gate["gate"], gate["action"], gate["note"]) == ("after_po", "approve", "ship it")
    assert gate["by"] and gate["answered_at"] >= gate["asked_at"]
    assert json.loads(cli("status", path, "--json").stdout)[0]["waiting"] is None
    # The run is finished now: no later run is told it "did not finish", nothing to resume.
    later = cli(path, "--plain")
    assert "did not finish" not in later.stdout, later.stdout
    assert cli(path, "--resume").returncode == 2


def test_reject_after_po_sends_the_story_back_to_sm_with_the_note(demo: Path, socket: str) -> None:
    path = epic(demo, socket, gates=["after_po"])
    assert cli(path, "--plain").returncode == ExitCode.WAITING

    rejected = cli("reject", path, "1.1", "--note", "split AC 2 into two criteria")

    assert rejected.returncode == ExitCode.WAITING, rejected.stdout + rejected.stderr  # asked again
    (revision,) = recorded_prompts(demo.parent, "split AC 2 into two criteria")
    assert revision.startswith("/BMad:agents:sm *draft") and "Revise story 1.1" in revision
    assert runs(demo)["1.1"] == {"sm": 2, "po": 2}
    assert waiting_for(demo)["po_revisions"] == 1
    assert cli("approve", path, "1.1").returncode == 0
    assert stories(report(demo))["1.1"]["result"] == "done"


def test_reject_after_qa_gives_a_dev_fix_round_with_the_note(demo: Path, socket: str) -> None:
    path = epic(demo, socket, gates=["after_qa"])
    assert cli(path, "--plain").returncode == ExitCode.WAITING
    assert waiting_for(demo)["waiting"]["gate"] == "after_qa"

    rejected = cli("reject", path, "1.1", "--note", "the error message is unclear")

    assert rejected.returncode == ExitCode.WAITING  # QA passed again: asked again
    (fix,) = recorded_prompts(demo.parent, "the error message is unclear")
    assert fix.startswith("/BMad:agents:dev *review-qa")
    assert waiting_for(demo)["qa_fix_rounds"] == 1
    assert cli("approve", path, "1.1").returncode == 0
    done = stories(report(demo))["1.1"]
    assert done["result"] == "done"
    assert [(g["gate"], g["action"]) for g in done["gates"]] == [
        ("after_qa", "reject"),
        ("after_qa", "approve"),
    ]


def test_a_question_the_nudges_did_not_settle_gets_a_reply_in_a_fresh_attempt(
    demo: Path, socket: str
) -> None:
    ask = ("--misbehave", "ask", "--misbehave-stage", "sm", "--misbehave-times", "1")
    flags = ["--record", str(demo.parent / "prompts.jsonl"), *ask]
    agent = {"profile": "simulated", "flags": flags, "nudges": 0}
    path = epic(demo, socket, gates=["on_needs_input"], agent=agent)

    first = cli(path, "--plain")

    assert first.returncode == ExitCode.WAITING, first.stdout + first.stderr
    story = waiting_for(demo)
    assert story["waiting"]["gate"] == "on_needs_input"
    assert "accept the risk and override?" in story["waiting"]["question"]  # the agent's words
    refused = cli("approve", path, "1.3")
    assert refused.returncode == 2 and "is not waiting for a person" in refused.stderr

    replied = cli("reply", path, "1.1", "Yes: override, the risk is accepted")

    assert replied.returncode == 0, replied.stdout + replied.stderr
    (fresh,) = recorded_prompts(demo.parent, "Yes: override, the risk is accepted")
    assert fresh.startswith("/BMad:agents:sm *draft")
    assert stories(report(demo))["1.1"]["result"] == "done"
    assert runs(demo)["1.1"]["sm"] == 2


def test_a_reply_fits_only_a_question_and_a_reject_needs_a_note(demo: Path, socket: str) -> None:
    path = epic(demo, socket, gates=["after_po"])
    assert cli(path, "--plain").returncode == ExitCode.WAITING
    reply = cli("reply", path, "1.1", "text")
    assert reply.returncode == 2 and "approve or reject it" in reply.stderr
    bare = cli("reject", path, "1.1", "--note", "")
    assert bare.returncode == 2 and "reject needs --note" in bare.stderr
    assert "Traceback" not in reply.stderr + bare.stderr
    assert waiting_for(demo)["waiting"]["gate"] == "after_po"  # nothing moved


async def test_while_one_story_waits_another_runs_and_the_live_run_takes_the_answer(
    demo: Path, socket: str
) -> None:
    ask = ("--misbehave", "ask", "--misbehave-story", "1.1", "--misbehave-stage", "sm")
    ask += ("--misbehave-times", "1")
    flags = ["--record", str(demo.parent / "prompts.jsonl"), "--work-seconds", "1.5", *ask]
    agent = {"profile": "simulated", "flags": flags, "nudges": 0}
    path = epic(
        demo, socket, gates=["on_needs_input"], agent=agent, stories=["1.1", "1.3"], parallel=1
    )
    run = start_cli(path, "--plain")
    try:
        state = demo / ".bmad-orchestrator"
        await wait_until(
            lambda: (state / "waiting" / "1.1.json").exists(), folder=state, what="1.1 waiting"
        )
        reply = await asyncio.to_thread(cli, "reply", path, "1.1", "go on")
        assert reply.returncode == 0, reply.stderr
        assert "resumes the story when a slot is free" in reply.stdout
        out, err = await asyncio.to_thread(run.communicate, timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out + err
    data = report(demo)
    assert {s: r["result"] for s, r in stories(data).items()} == {"1.1": "done", "1.3": "done"}
    assert "story 1.3: sm attempt 1 started" in out.split("story 1.1: WAITING")[1]  # slot freed
    assert len(list((state / "runs").iterdir())) == 1  # one run took the answer


# --- notices -----------------------------------------------------------------------------------


class Received(BaseHTTPRequestHandler):
    """Keeps every POST body; answers with the server's `status`."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append((self.path, json.loads(self.rfile.read(length))))  # type: ignore[attr-defined]
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on 127.0.0.1, stopped after the test."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Received)
    httpd.bodies = []  # type: ignore[attr-defined]
    httpd.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://user:pw-{SECRET}@{host}:{port}/hooks/{SECRET}?token={SECRET}"


def test_notices_reach_a_webhook_and_a_command_and_secrets_never_show(
    demo: Path, socket: str, server: ThreadingHTTPServer, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox.jsonl"
    record = f"import sys; open({str(inbox)!r}, 'a').write(sys.stdin.read() + '\\n')"
    notify = {"webhook": url(server), "command": [sys.executable, "-c", record]}
    path = epic(demo, socket, gates=["after_po"], notify=notify)

    first = cli(path, "--plain")
    approved = cli("approve", path, "1.1")

    assert (first.returncode, approved.returncode) == (ExitCode.WAITING, 0)
    posted = [body for _, body in server.bodies]  # type: ignore[attr-defined]
    assert [b["event"] for b in posted] == [
        "waiting_for_person",
        "run_finished",
        "story_done",
        "run_finished",
    ]
    waiting = posted[0]
    assert (waiting["story"], waiting["gate"], waiting["stage"]) == ("1.1", "after_po", "po")
    assert waiting["answer"][0] == f"python -m orchestrator approve {path} 1.1"
    assert posted[1]["exit_code"] == ExitCode.WAITING and posted[1]["results"] == {"waiting": 1}
    commanded = [json.loads(line) for line in inbox.read_text().splitlines()]
    assert [b["event"] for b in commanded] == [b["event"] for b in posted]
    state = demo / ".bmad-orchestrator"
    shown = first.stdout + first.stderr + approved.stdout + approved.stderr
    kept = "".join(p.read_text() for p in state.rglob("*") if p.suffix in (".json", ".jsonl"))
    assert SECRET not in shown and SECRET not in kept
    delivered = [e for e in events(demo) if e["event"] == "notify" and e["kind"] == "webhook"]
    assert delivered and all(e["to"].startswith("http://127.0.0.1:") for e in delivered)


def test_a_failing_webhook_never_fails_a_story(
    demo: Path, socket: str, server: ThreadingHTTPServer
) -> None:
    server.status = 500  # type: ignore[attr-defined]
    path = epic(demo, socket, notify={"webhook": url(server), "events": ["story_done"]})

    result = cli(path, "--plain")

    assert result.returncode == 0, result.stdout + result.stderr
    assert stories(report(demo))["1.1"]["result"] == "done"
    assert len(server.bodies) == 3  # type: ignore[attr-defined] # tried three times
    (failure,) = [e for e in events(demo) if e["event"] == "notify-error"]
    assert "500" in failure["error"] and SECRET not in json.dumps(failure)


# --- questions belong to their run ---------------------------------------------------------------


def test_a_newer_run_that_finished_the_story_leaves_no_question_to_answer(
    demo: Path, socket: str
) -> None:
    path = epic(demo, socket, gates=["after_po"])
    assert cli(path, "--plain").returncode == ExitCode.WAITING  # run A asks after PO
    state = demo / ".bmad-orchestrator"
    assert (state / "waiting" / "1.1.json").is_file()

    second = cli(path, "--plain")  # run B, a new run: 1.1 starts at Dev (Approved) and ends Done

    assert second.returncode == 0, second.stdout + second.stderr
    assert stories(report(demo))["1.1"]["result"] == "done"
    ran = {"sm": 1, "po": 1, "dev": 1, "qa": 1}
    assert runs(demo)["1.1"] == ran
    (row,) = json.loads(cli("status", path, "--json").stdout)
    assert row["waiting"] is None
    assert "waiting for a person" not in cli("status", path).stdout
    refused = cli("approve", path, "1.1")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not waiting for a person" in refused.stderr and "Traceback" not in refused.stderr
    assert runs(demo)["1.1"] == ran  # no Dev or QA again on the Done story

    # `--resume` continues run A (its last unfinished run), but not with 1.1: run B has run it.
    resumed = cli(path, "--resume", "--plain")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "left as a newer run left them: 1.1" in resumed.stdout
    assert not (state / "waiting" / "1.1.json").exists()
    assert cli(path, "--resume").returncode == 2  # run A is finished now: nothing to resume
    assert runs(demo)["1.1"] == ran


def test_an_answer_for_a_run_a_newer_unfinished_run_replaced_is_refused(
    demo: Path, socket: str
) -> None:
    path = epic(demo, socket, gates=["after_po"], stories=["1.1", "1.3"])
    first = cli(path, "--only", "1.1", "--plain")  # run A: 1.1 waits
    assert first.returncode == ExitCode.WAITING, first.stdout + first.stderr
    run_a = json.loads((demo / ".bmad-orchestrator" / "waiting" / "1.1.json").read_text())["run_id"]
    second = cli(path, "--only", "1.3", "--plain")  # run B, new: 1.3 waits, B is unfinished
    assert second.returncode == ExitCode.WAITING, second.stdout + second.stderr

    listed = {
        row["story"]: row["waiting"] for row in json.loads(cli("status", path, "--json").stdout)
    }
    assert listed["1.1"] is None and listed["1.3"]["gate"] == "after_po"
    refused = cli("approve", path, "1.1")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"run {run_a}" in refused.stderr and "stale" in refused.stderr
    assert runs(demo)["1.1"] == {"sm": 1, "po": 1}  # nothing resumed, nothing ran
    assert not list((demo / ".bmad-orchestrator" / "answers").rglob("1.1.json"))
    assert cli("approve", path, "1.3").returncode == 0  # the current run's question still works
    assert runs(demo)["1.3"] == {"sm": 1, "po": 1, "dev": 1, "qa": 1}
