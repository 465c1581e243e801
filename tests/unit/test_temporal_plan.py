"""Which host each story runs on under `executor: temporal` (the plan is fixed at start)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.app.config import EpicConfig
from orchestrator.errors import ConfigError
from orchestrator.executors.temporal import plan_epic


def config(hosts: list[str], stories: list[object]) -> EpicConfig:
    return EpicConfig.model_validate(
        {
            "project": str(Path.cwd()),
            "name": "plan",
            "executor": "temporal",
            "checkpointer": "$BMAD_PG_URL",
            "temporal": {"hosts": hosts},
            "stories": stories,
        }
    )


def test_named_hosts_stay_and_the_rest_go_round_robin_over_live_workers() -> None:
    epic = config(["a", "b", "c"], [{"id": "1", "host": "c"}, "2", "3", "4"])
    plan = plan_epic(epic, "run", live=["b", "c"])
    assert plan.hosts == {"1": "c", "2": "b", "3": "c", "4": "b"}
    everyone = plan_epic(epic, "run", live=[])  # no worker seen yet: every listed host
    assert everyone.hosts == {"1": "c", "2": "a", "3": "b", "4": "c"}


def test_a_story_with_no_host_to_go_to_is_an_input_error() -> None:
    with pytest.raises(ConfigError, match="no host for story '1'"):
        plan_epic(config([], ["1"]), "run")
