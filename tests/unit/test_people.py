"""Gates in routing, answers checked against their gate, and the URL redaction rule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.app.notify import NotifySettings
from orchestrator.app.people import (
    Waiting,
    load_waiting,
    make_answer,
    open_questions,
    save_waiting,
    stale_reason,
)
from orchestrator.app.runs import RunRecord, save_record
from orchestrator.files import USER_STATE
from orchestrator.nodes.gate import pending_gate, question
from orchestrator.nodes.routing import (
    route_after_gate,
    route_after_po,
    route_after_qa,
    route_after_sm,
)
from orchestrator.redaction import KEY_NAME, redact_url
from orchestrator.state import RecoveryEntry, StoryPolicy, StoryState

GATED = StoryPolicy(gates=["after_po", "after_qa", "on_needs_input"])


def state(**fields: object) -> StoryState:
    return StoryState.model_validate({"story_id": "1.1", "policy": GATED, **fields})


def asked(stage: str) -> RecoveryEntry:
    return RecoveryEntry(
        at=datetime.now(UTC),
        stage=stage,  # type: ignore[arg-type]
        attempt=1,
        problem="needs_input",
        detail="asked",
        last_screen=["? Override the checklist?", ""],
        action="retry",
    )


def test_gates_stand_between_stages_only_where_the_epic_asks() -> None:
    assert route_after_po(state(stage="po", outcome="approved")) == "gate"
    passed = state(stage="qa", outcome="PASS", outcomes={"qa": "PASS"})
    assert route_after_qa(passed) == "gate"
    stuck = state(stage="sm", outcome=None, failed_attempts=1, recovery_log=[asked("sm")])
    assert route_after_sm(stuck) == "gate" and pending_gate(stuck) == "on_needs_input"
    assert "Override the checklist?" in question(stuck, "on_needs_input")
    ungated = stuck.model_copy(update={"policy": StoryPolicy()})
    assert route_after_sm(ungated) == "sm"  # without the gate: the usual retry


@pytest.mark.parametrize(
    ("gate", "action", "stage", "to"),
    [
        ("after_po", "approve", "po", "dev"),
        ("after_po", "reject", "po", "sm"),
        ("after_qa", "approve", "qa", "integrate"),
        ("after_qa", "reject", "qa", "dev"),
        ("on_needs_input", "reply", "dev", "dev"),
        ("on_needs_input", "reject", "dev", "failed"),
    ],
)
def test_an_answer_sends_the_story_where_it_asks(
    gate: str, action: str, stage: str, to: str
) -> None:
    assert route_after_gate(state(gate=gate, gate_action=action, stage=stage)) == to


def waiting(gate: str) -> Waiting:
    return Waiting(
        run_id="r",
        epic="/p/epic.yaml",
        story="1.1",
        gate=gate,  # type: ignore[arg-type]
        stage="po",
        question="?",
        interrupt_id="i",
        asked_at=datetime.now(UTC),
    )


def test_answers_must_fit_their_gate() -> None:
    with pytest.raises(ValueError, match="approve or reject it"):
        make_answer(waiting("after_po"), "reply", "text")
    with pytest.raises(ValueError, match="reject needs --note"):
        make_answer(waiting("after_qa"), "reject", None)
    answer = make_answer(waiting("on_needs_input"), "reply", "yes")
    assert (answer.interrupt_id, answer.note) == ("i", "yes") and answer.by
    assert waiting("on_needs_input").commands()[0].endswith("reply /p/epic.yaml 1.1 'YOUR ANSWER'")


def test_a_webhook_url_shows_only_its_scheme_and_host() -> None:
    url = "https://user:pw@hooks.example.com:8443/services/T1/B2/SECRETPATH?token=SECRETQUERY"
    shown = redact_url(url)
    assert shown.startswith("https://hooks.example.com:8443/…#")
    for secret in ("user", "pw", "SECRETPATH", "SECRETQUERY", "services"):
        assert secret not in shown
    dumped = NotifySettings(webhook=url).model_dump_json()  # what run.json keeps
    assert "SECRET" not in dumped and "hooks.example.com" in dumped
    assert redact_url(url) != redact_url(url + "x")  # two URLs stay apart
    with pytest.raises(ValueError, match="http:// or https://"):
        NotifySettings(webhook="file:///etc/passwd")


def test_an_answer_to_an_older_question_is_dropped_never_used(tmp_path: object) -> None:
    from pathlib import Path

    from orchestrator.app.people import has_answer, save_answer, take_answer

    state = Path(str(tmp_path)) / "state"
    old = waiting("after_po")
    save_answer(state, old, make_answer(old, "approve", None))
    assert has_answer(state, "r", "1.1")
    assert take_answer(state, "r", "1.1", interrupt_id="a-newer-question") is None
    assert not has_answer(state, "r", "1.1")  # dropped, not kept for later
    save_answer(state, old, make_answer(old, "approve", "ok"))
    taken = take_answer(state, "r", "1.1", interrupt_id="i")
    assert taken is not None and taken.note == "ok"


def test_a_shown_digest_is_keyed_so_it_is_no_password_oracle() -> None:
    url = "https://user:S3CRET@hooks.example.com/T0/B0/XXXX"
    shown = redact_url(url)
    digest = shown.rsplit("#", 1)[1]
    # Guessing the password and hashing the URL finds nothing: the digest needs the user's key.
    for guess in ("password", "secret", "S3CRET", "hunter2", "letmein"):
        candidate = url.replace("S3CRET", guess)
        assert hashlib.sha256(candidate.encode()).hexdigest()[:8] != digest
    key = Path.home() / USER_STATE / KEY_NAME
    assert key.stat().st_mode & 0o777 == 0o600
    assert redact_url(url) == shown  # stable, so an unchanged URL reads as unchanged


def record(run_id: str, minute: int, stories: list[str], **fields: object) -> RunRecord:
    started = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    return RunRecord(
        run_id=run_id, epic="/p/epic.yaml", started_at=started, stories=stories, **fields
    )  # type: ignore[arg-type]


def test_a_question_is_current_only_while_its_run_is_the_one_to_resume() -> None:
    asked = waiting("after_po")  # asked by run "r" about story 1.1
    a = record("r", 0, ["1.1", "1.3"])
    assert stale_reason(asked, "/p/epic.yaml", [a]) is None
    assert stale_reason(asked, "/p/epic.yaml", [a, record("s", 5, ["1.3"], finished=True)]) is None

    took = stale_reason(asked, "/p/epic.yaml", [a, record("s", 5, ["1.1"], finished=True)])
    assert took is not None and "run s has run story 1.1 since" in took
    newer = stale_reason(asked, "/p/epic.yaml", [record("s", 5, ["1.3"]), a])  # any order
    assert newer is not None and "run s is the epic's unfinished run now" in newer
    for gone, why in (
        ([], "not among this epic's runs"),
        ([a.model_copy(update={"finished": True})], "has finished"),
        ([a.model_copy(update={"abandoned": "checkpoint set aside"})], "cannot be resumed"),
        ([a.model_copy(update={"epic": "/q/epic.yaml"})], "not among this epic's runs"),
    ):
        assert why in (stale_reason(asked, "/p/epic.yaml", gone) or "")
    other = stale_reason(asked, "/q/epic.yaml", [a])
    assert other is not None and "another epic" in other


def test_status_lists_only_questions_a_run_can_still_take(tmp_path: Path) -> None:
    state = tmp_path / "state"
    save_record(state, record("r", 0, ["1.1", "1.3"]))
    save_waiting(state, waiting("after_po"))
    save_waiting(state, waiting("after_qa").model_copy(update={"story": "1.3"}))
    assert open_questions(state, "/p/epic.yaml", ["1.1", "1.3", "1.2"]) == {
        "1.1": load_waiting(state, "1.1"),
        "1.3": load_waiting(state, "1.3"),
        "1.2": None,
    }
    save_record(state, record("s", 5, ["1.1"], finished=True))  # a newer run took 1.1 on
    listed = open_questions(state, "/p/epic.yaml", ["1.1", "1.3"])
    assert listed["1.1"] is None and listed["1.3"] is not None
    assert load_waiting(state, "1.1") is not None  # ignored, not deleted, by a mere look
