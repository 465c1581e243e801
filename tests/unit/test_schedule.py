"""orchestrator.app.schedule: the order stories start in, and who is skipped when one fails."""

from __future__ import annotations

from orchestrator.app.schedule import Schedule


def drain(schedule: Schedule, results: dict[str, str]) -> list[str]:
    """Run everything one at a time, each story ending as `results` says (done by default)."""
    order = []
    while (story := schedule.next()) is not None:
        order.append(story)
        result = results.get(story, "done")
        schedule.finished(story, done=result == "done", result=result)
    return order


def test_stories_start_in_the_listed_order_after_their_dependencies() -> None:
    schedule = Schedule(["1.1", "1.2", "1.3"], {"1.2": ["1.3"]}, done_outside=lambda dep: False)
    assert drain(schedule, {}) == ["1.1", "1.3", "1.2"]
    assert schedule.skipped == {}


def test_independent_stories_are_ready_together() -> None:
    schedule = Schedule(["a", "b", "c"], {"c": ["a"]}, done_outside=lambda dep: False)
    assert [schedule.next(), schedule.next(), schedule.next()] == ["a", "b", None]
    schedule.finished("a", done=True, result="done")
    assert schedule.next() == "c"


def test_a_failed_story_skips_its_dependants_transitively() -> None:
    schedule = Schedule(
        ["1.1", "1.2", "1.3", "1.4"],
        {"1.2": ["1.1"], "1.3": ["1.2"]},
        done_outside=lambda dep: False,
    )
    assert drain(schedule, {"1.1": "failed"}) == ["1.1", "1.4"]
    assert schedule.skipped == {
        "1.2": "depends on 1.1, which failed",
        "1.3": "depends on 1.2, which skipped",
    }


def test_a_dependency_outside_the_run_must_be_done() -> None:
    schedule = Schedule(
        ["1.2", "1.3"], {"1.2": ["1.1"], "1.3": ["9.9"]}, done_outside=lambda dep: dep == "1.1"
    )
    assert drain(schedule, {}) == ["1.2"]
    assert schedule.skipped == {"1.3": "depends on 9.9, which is not selected and not Done"}
