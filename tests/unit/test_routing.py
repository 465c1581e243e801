"""Routing is a pure function of the state: every outcome and every bound."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import pytest

from orchestrator.nodes.routing import (
    failure_reason,
    route_after_dev,
    route_after_integrate,
    route_after_po,
    route_after_qa,
    route_after_sm,
    route_start,
)
from orchestrator.state import RecoveryEntry, StoryPolicy, StoryState


def state(**fields) -> StoryState:
    return StoryState(story_id="1.1", **fields)


@pytest.mark.parametrize("start", ["sm", "po", "dev", "qa", "done"])
def test_start_where_the_story_is(start: str) -> None:
    assert route_start(state(start_at=start)) == start


def test_sm_drafted_goes_to_po() -> None:
    assert route_after_sm(state(stage="sm", outcome="drafted")) == "po"


@pytest.mark.parametrize(
    ("route", "stage"),
    [
        (route_after_sm, "sm"),
        (route_after_po, "po"),
        (route_after_dev, "dev"),
        (route_after_qa, "qa"),
    ],
)
def test_a_failed_attempt_retries_until_max_attempts(route, stage: str) -> None:
    policy = StoryPolicy(max_attempts={stage: 3})
    assert route(state(stage=stage, outcome=None, failed_attempts=1, policy=policy)) == stage
    assert route(state(stage=stage, outcome=None, failed_attempts=2, policy=policy)) == stage
    assert route(state(stage=stage, outcome=None, failed_attempts=3, policy=policy)) == "failed"


def test_default_max_attempts_is_two() -> None:
    assert route_after_dev(state(stage="dev", outcome=None, failed_attempts=1)) == "dev"
    assert route_after_dev(state(stage="dev", outcome=None, failed_attempts=2)) == "failed"


def test_po_go_goes_to_dev() -> None:
    assert route_after_po(state(stage="po", outcome="approved")) == "dev"


def test_po_no_go_revises_up_to_max_revisions() -> None:
    policy = StoryPolicy(max_revisions=2)
    for revisions, expected in [(0, "sm"), (1, "sm"), (2, "failed")]:
        s = state(stage="po", outcome="rejected", po_revisions=revisions, policy=policy)
        assert route_after_po(s) == expected


def test_po_no_go_with_zero_revisions_allowed_fails() -> None:
    s = state(stage="po", outcome="rejected", policy=StoryPolicy(max_revisions=0))
    assert route_after_po(s) == "failed"


def test_dev_implemented_goes_to_qa_and_blocked_fails() -> None:
    assert route_after_dev(state(stage="dev", outcome="implemented")) == "qa"
    assert route_after_dev(state(stage="dev", outcome="blocked")) == "failed"


@pytest.mark.parametrize("gate", ["PASS", "WAIVED", "CONCERNS"])
def test_qa_passing_gates_go_on_to_integrate(gate: str) -> None:
    assert route_after_qa(state(stage="qa", outcome=gate, outcomes={"qa": gate})) == "integrate"


@pytest.mark.parametrize("outcome", ["merged", "shared"])
def test_merged_or_shared_work_is_done(outcome: str) -> None:
    assert route_after_integrate(state(stage="integrate", outcome=outcome)) == "done"


def test_a_conflict_goes_to_dev_up_to_max_merge_rounds() -> None:
    for limit, rounds, expected in [(1, 0, "dev"), (1, 1, "failed"), (0, 0, "failed")]:
        s = state(
            stage="integrate",
            outcome="conflict",
            outcomes={"integrate": "conflict"},
            merge_rounds=rounds,
            policy=StoryPolicy(max_merge_rounds=limit),
        )
        assert route_after_integrate(s) == expected


def test_a_git_failure_in_integrate_is_retried_then_fails() -> None:
    policy = StoryPolicy(max_attempts={"integrate": 2})
    once = state(stage="integrate", outcome=None, failed_attempts=1, policy=policy)
    assert route_after_integrate(once) == "integrate"
    twice = state(stage="integrate", outcome=None, failed_attempts=2, policy=policy)
    assert route_after_integrate(twice) == "failed"


def test_a_merge_conflict_failure_says_how_to_finish_by_hand() -> None:
    s = state(
        stage="integrate",
        outcome="conflict",
        branch="bmad/epic--1.1",
        workdir="/state/worktrees/1.1",
        merge_conflicts=["src/app.txt"],
        policy=StoryPolicy(max_merge_rounds=0),
    )
    reason = failure_reason(s)
    assert "src/app.txt" in reason and "max_merge_rounds is 0" in reason
    assert "run `git -C /state/worktrees/1.1 merge bmad/epic`" in reason
    assert "`git merge --no-ff bmad/epic--1.1` on bmad/epic" in reason


def test_concerns_can_count_as_fail() -> None:
    policy = StoryPolicy(concerns="fail")
    s = state(stage="qa", outcome="CONCERNS", outcomes={"qa": "CONCERNS"}, policy=policy)
    assert route_after_qa(s) == "dev"


def test_qa_fail_goes_back_to_dev_up_to_max_fix_rounds() -> None:
    policy = StoryPolicy(max_fix_rounds=2)
    for rounds, expected in [(0, "dev"), (1, "dev"), (2, "failed")]:
        s = state(
            stage="qa", outcome="FAIL", outcomes={"qa": "FAIL"}, qa_fix_rounds=rounds, policy=policy
        )
        assert route_after_qa(s) == expected


def test_failure_reasons_say_what_happened() -> None:
    entry = RecoveryEntry(
        at=datetime.now(UTC),
        stage="dev",
        attempt=2,
        problem="timeout",
        detail="no output after 1800s",
        action="give up",
    )
    out_of_attempts = state(stage="dev", outcome=None, failed_attempts=2, recovery_log=[entry])
    assert failure_reason(out_of_attempts) == "dev failed 2 attempt(s): no output after 1800s"
    rejected = state(stage="po", outcome="rejected", po_revisions=1)
    assert "NO-GO" in failure_reason(rejected) and "max_revisions is 1" in failure_reason(rejected)
    assert "Blocked" in failure_reason(state(stage="dev", outcome="blocked"))
    qa = state(stage="qa", outcome="FAIL", qa_fix_rounds=2)
    assert failure_reason(qa) == "QA gate FAIL after 2 fix round(s); max_fix_rounds is 2"


def test_a_printed_command_is_safe_to_paste_whatever_the_path() -> None:
    hostile = "/tmp/r $(touch P) #(touch Q)"
    s = state(
        stage="integrate",
        outcome="conflict",
        branch="bmad/epic--1.1",
        workdir=hostile,
        merge_conflicts=["a"],
        policy=StoryPolicy(max_merge_rounds=0),
    )
    printed = failure_reason(s).split("run `", 1)[1].split("`", 1)[0]
    assert shlex.split(printed) == ["git", "-C", hostile, "merge", "bmad/epic"]  # one argument
