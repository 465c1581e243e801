"""Usage from each CLI's own records (fixtures in the CLIs' formats), prices, totals, budgets."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.agents.clis.base import MAX_LINE_BYTES, UsageQuery, UsageRecord
from orchestrator.agents.clis.claude import Claude
from orchestrator.agents.clis.codex import Codex
from orchestrator.agents.clis.copilot import Copilot
from orchestrator.agents.clis.gemini import Gemini
from orchestrator.agents.clis.opencode import Opencode
from orchestrator.agents.prices import DEFAULT_PRICES, ModelPrice, dollars, price_of, price_table
from orchestrator.agents.profiles import make_profile
from orchestrator.agents.usage import ModelTokens, RunLedger, Usage, UsageTotal
from orchestrator.nodes.accounting import read_usage
from orchestrator.nodes.routing import (
    budget_exceeded,
    route_after_dev,
    route_after_integrate,
    route_after_qa,
    route_after_sm,
)
from orchestrator.state import AttemptRecord, StoryContext, StoryPolicy, StoryState
from orchestrator.state.story import Budget
from orchestrator.tmux import AgentSession
from tests.helpers import REPO

FIXTURES = REPO / "tests" / "fixtures" / "usage"
CWD = Path("/work/app")


def place(fixture: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / fixture, target)
    return target


def query(home: Path, session_id: str = "s", **fields: object) -> UsageQuery:
    base: dict[str, object] = {
        "name": "bmad-sm-1-1",
        "run_dir": home / "run",
        "session_id": session_id,
        "cwd": CWD,
        "started_ns": 0,
        "env": {"HOME": str(home)},
    }
    return UsageQuery(**{**base, **fields})  # type: ignore[arg-type]


def tokens(record: object, model: str) -> tuple[int, int, int, int]:
    counts: ModelTokens = record.per_model[model]  # type: ignore[attr-defined]
    return (counts.input, counts.output, counts.cache_read, counts.cache_write)


# --- each CLI's records ------------------------------------------------------------------------


def test_claude_counts_each_streamed_message_once_with_its_subagents(tmp_path: Path) -> None:
    sid = "0f4c1e7a-6a51-4d7e-9a44-0d4f2a9f1b10"
    folder = tmp_path / ".claude" / "projects" / "-work-app"
    place("claude-transcript.jsonl", folder / f"{sid}.jsonl")
    place("claude-subagent.jsonl", folder / sid / "subagents" / "agent-a7f.jsonl")
    record = Claude().read_usage(query(tmp_path, sid))
    assert record is not None and sorted(record.per_model) == [
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-5-20250929",
    ]  # the <synthetic> model is no model; the torn last line is skipped
    assert tokens(record, "claude-sonnet-4-5-20250929") == (8, 1508, 42000, 12800)
    assert tokens(record, "claude-haiku-4-5-20251001") == (1200, 90, 0, 0)


def test_claude_finds_a_transcript_by_the_hooks_path_or_by_session_id(tmp_path: Path) -> None:
    sid = "11111111-2222-3333-4444-555555555555"
    elsewhere = place("claude-transcript.jsonl", tmp_path / "x" / f"{sid}.jsonl")
    hinted = Claude().read_usage(query(tmp_path, sid, turn_end={"transcript_path": str(elsewhere)}))
    assert hinted is not None and hinted.source == str(elsewhere)
    hashed = tmp_path / ".claude" / "projects" / "-work-app-very-long-name-a1b2c3" / f"{sid}.jsonl"
    place("claude-transcript.jsonl", hashed)
    found = Claude().read_usage(query(tmp_path, sid))
    assert found is not None and found.source == str(hashed)
    assert Claude().read_usage(query(tmp_path, "no-such-session")) is None


def test_codex_takes_the_last_totals_and_splits_cached_input(tmp_path: Path) -> None:
    thread = "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    day = tmp_path / ".codex" / "sessions" / "2026" / "11" / "20"
    place("codex-rollout.jsonl", day / f"rollout-2026-11-20T10-00-00-{thread}.jsonl")
    record = Codex().read_usage(query(tmp_path, turn_end={"thread-id": thread}))
    assert record is not None and tokens(record, "gpt-5-codex") == (9000, 2100, 21000, 0)
    assert record.usd is None  # Codex reports no dollars


def test_codex_without_a_thread_id_finds_its_rollout_only_when_it_is_the_only_one(
    tmp_path: Path,
) -> None:
    day = tmp_path / ".codex" / "sessions" / "2026" / "11" / "20"
    place("codex-rollout.jsonl", day / "rollout-2026-11-20T10-00-00-aaaaaaaa.jsonl")
    started = int(datetime(2026, 11, 20, 9, 59, tzinfo=UTC).timestamp() * 1e9)
    assert Codex().read_usage(query(tmp_path, started_ns=started)) is not None
    place("codex-rollout.jsonl", day / "rollout-2026-11-20T10-00-01-bbbbbbbb.jsonl")
    assert Codex().read_usage(query(tmp_path, started_ns=started)) is None  # never a guess


def test_gemini_reads_the_conversation_as_gemini_loads_it(tmp_path: Path) -> None:
    sid = "1b6f0a5e-3c2d-4e0f-9a8b-7c6d5e4f3a2b"
    chats = tmp_path / ".gemini" / "tmp" / "app" / "chats"
    place("gemini-session.jsonl", chats / "session-2026-11-20T10-00-1b6f0a5e.jsonl")
    record = Gemini().read_usage(query(tmp_path, sid))
    assert record is not None
    # g-1 counted once (its last version), g-2 rewound away; input includes the cached tokens.
    assert tokens(record, "gemini-2.5-pro") == (4050, 420, 8000, 0)
    assert tokens(record, "gemini-2.5-flash") == (4000, 900, 1000, 0)


def test_copilot_usage_is_the_shutdown_events_model_metrics(tmp_path: Path) -> None:
    sid = "8e1d6b1c-2f4a-4c55-9b0e-31a7c1e2d3f4"
    events = place(
        "copilot-events.jsonl", tmp_path / ".copilot" / "session-state" / sid / "events.jsonl"
    )
    record = Copilot().read_usage(query(tmp_path, sid))
    assert record is not None
    assert tokens(record, "claude-sonnet-4.5") == (20000, 1800, 40000, 6000)
    assert tokens(record, "gpt-5-mini") == (900, 40, 0, 0)
    events.write_text("\n".join(events.read_text().splitlines()[:-1]) + "\n")  # killed early
    assert Copilot().read_usage(query(tmp_path, sid)) is None


def test_opencode_keeps_the_last_update_of_each_message_and_its_cost(tmp_path: Path) -> None:
    place("opencode-usage.jsonl", tmp_path / "run" / "bmad-sm-1-1.usage.jsonl")
    record = Opencode().read_usage(query(tmp_path))
    assert record is not None
    assert tokens(record, "claude-sonnet-4-5") == (14, 1020, 67000, 7500)
    assert record.usd == pytest.approx(0.0567)


# --- prices --------------------------------------------------------------------------------------


def test_prices_match_a_model_give_or_take_its_date_and_provider() -> None:
    table = price_table({})
    assert price_of("claude-sonnet-4-5-20250929", table) == DEFAULT_PRICES["claude-sonnet-4-5"]
    assert (
        price_of("us.anthropic.claude-opus-4-1-20250805-v1:0", table)
        == DEFAULT_PRICES["claude-opus-4-1"]
    )
    assert price_of("claude-sonnet-4-5[1m]", table) == DEFAULT_PRICES["claude-sonnet-4-5"]
    assert price_of("gpt-5-2025-08-07", table) == DEFAULT_PRICES["gpt-5"]
    # A newer model that merely starts like a priced one is unknown, not mispriced.
    assert price_of("claude-opus-4-9-20270101", table) is None
    assert price_of("gpt-5.1-codex", table) is None


def test_dollars_are_unknown_when_a_model_with_tokens_has_no_price() -> None:
    priced = {"claude-haiku-4-5-20251001": ModelTokens(1_000_000, 1_000_000, 0, 0)}
    assert dollars(priced, DEFAULT_PRICES) == pytest.approx(6.0)
    assert dollars({**priced, "mystery-1": ModelTokens(10, 0, 0, 0)}, DEFAULT_PRICES) is None
    assert dollars({**priced, "mystery-1": ModelTokens()}, DEFAULT_PRICES) == pytest.approx(6.0)
    mine = price_table({"mystery-1": ModelPrice(input=1, output=2)})
    assert dollars({"mystery-1": ModelTokens(1_000_000, 0, 0, 0)}, mine) == pytest.approx(1.0)


def test_totals_say_what_is_unknown() -> None:
    known = Usage(input=1000, output=500, usd=0.25)
    unpriced = Usage(input=10, output=10, usd=None)
    total = UsageTotal.of([known, None, unpriced])
    assert (total.tokens, total.usd, total.unknown, total.unpriced) == (1520, 0.25, 1, 1)
    assert total.describe() == "1.5k tok $0.25 (+2 unknown)"
    assert UsageTotal.of([None]).describe() == "unknown"
    assert UsageTotal.of([]).describe() == ""


def test_the_run_ledger_adds_live_sessions_and_survives_a_failing_reader() -> None:
    ledger = RunLedger()
    ledger.add(Usage(input=100, usd=1.0))
    ledger.track("a", lambda: Usage(input=50, usd=0.5))

    def broken() -> Usage | None:
        raise ValueError("half-written")

    ledger.track("b", broken)
    total = ledger.total()
    assert (total.input, total.usd, total.attempts) == (150, 1.5, 1)
    ledger.untrack("a")
    assert ledger.total().input == 100


# --- budgets -------------------------------------------------------------------------------------


def attempt(stage: str, usd: float | None, tokens: int = 0) -> AttemptRecord:
    usage = None if usd is None else Usage(input=tokens, usd=usd)
    return AttemptRecord.model_validate(
        {
            "stage": stage,
            "attempt": 1,
            "session": "s",
            "log_path": "l",
            "started_at": datetime.now(UTC),
            "seconds": 1.0,
            "end": "done",
            "outcome": "x",
            "usage": usage,
        }
    )


def test_a_story_over_its_budget_stops_after_the_stage_it_was_in() -> None:
    policy = StoryPolicy(budget=Budget(usd=1.0))
    within = StoryState(story_id="1.1", policy=policy, runs=[attempt("sm", 0.5)])
    assert route_after_sm(within.model_copy(update={"stage": "sm", "outcome": "drafted"})) == "po"
    over = within.model_copy(
        update={
            "runs": [attempt("sm", 0.5), attempt("dev", 0.6)],
            "stage": "dev",
            "outcome": "implemented",
        }
    )
    assert route_after_dev(over) == "over_budget"
    assert budget_exceeded(over) == "story budget reached: $1.10 spent of a budget of $1.00"
    # A QA pass is not stopped: merging the finished story costs nothing.
    passed = over.model_copy(update={"stage": "qa", "outcome": "PASS", "outcomes": {"qa": "PASS"}})
    assert route_after_qa(passed) == "integrate"
    failed = passed.model_copy(update={"outcome": "FAIL", "outcomes": {"qa": "FAIL"}})
    assert route_after_qa(failed) == "over_budget"
    conflict = over.model_copy(update={"stage": "integrate", "outcome": "conflict"})
    assert route_after_integrate(conflict) == "over_budget"


def test_a_token_budget_counts_every_kind_and_unknown_usage_counts_nothing() -> None:
    policy = StoryPolicy(budget=Budget(tokens=1000))
    runs = [attempt("sm", 0.0, tokens=600), attempt("po", None), attempt("dev", 0.0, tokens=500)]
    state = StoryState(story_id="1.1", policy=policy, runs=runs, stage="dev", outcome="implemented")
    assert budget_exceeded(state) == "story budget reached: 1100 tokens used of a budget of 1000"
    assert state.usage.unknown == 1


def test_a_run_budget_stop_sends_the_story_to_over_budget() -> None:
    state = StoryState(story_id="1.1", stage="po", outcome=None, budget_stop="run budget reached")
    assert route_after_sm(state.model_copy(update={"stage": "sm"})) == "over_budget"


# --- records that are not what they claim to be ------------------------------------------------


def test_a_fifo_where_a_transcript_should_be_is_unknown_at_once(tmp_path: Path) -> None:
    folder = tmp_path / ".claude" / "projects" / "-work-app"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "s.jsonl")  # nobody writes it: opening it to read would block
    started = time.monotonic()
    assert Claude().read_usage(query(tmp_path)) == UsageRecord({}, source=str(folder / "s.jsonl"))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "usage",
    ['{"input_tokens": 1e999}', '{"input_tokens": -399999940}', '{"output_tokens": 1e14}'],
)
def test_an_impossible_count_makes_the_usage_unknown_not_wrong(tmp_path: Path, usage: str) -> None:
    line = (
        '{"type": "assistant", "requestId": "r", "message": {"id": "m", "model": "claude-x", '
        f'"usage": {usage}}}}}\n'
    )
    path = tmp_path / ".claude" / "projects" / "-work-app" / "s.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(line)
    with pytest.raises(ValueError, match="impossible count"):
        Claude().read_usage(query(tmp_path))
    # The stage's reader turns that into unknown usage, never a failed story or a negative sum.
    session = AgentSession("bmad-sm-1-1", "%1", "sm", "1.1", "r", 1, path, path, datetime.now(UTC))
    session = dataclasses.replace(session, meta={"agent_session_id": "s"})
    profile = make_profile("claude")
    context = StoryContext(project=tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path))
        assert read_usage(profile, session, CWD, context) is None


def test_deep_nesting_and_overlong_lines_are_skipped_and_the_rest_read(tmp_path: Path) -> None:
    good = (
        '{"type": "assistant", "requestId": "r", "message": {"id": "m", "model": "claude-x", '
        '"usage": {"input_tokens": 5, "output_tokens": 7}}}\n'
    )
    path = tmp_path / ".claude" / "projects" / "-work-app" / "s.jsonl"
    path.parent.mkdir(parents=True)
    with path.open("w") as handle:
        handle.write("[" * 200_000 + "\n")  # a RecursionError for json, once
        handle.write('{"pad": "' + "x" * (MAX_LINE_BYTES + 10) + '"}\n')  # one overlong line
        handle.write(good)
    record = Claude().read_usage(query(tmp_path))
    assert record is not None and tokens(record, "claude-x") == (5, 7, 0, 0)
