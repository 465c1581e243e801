"""One node per stage, the integrate node, plus the routing functions."""

from orchestrator.nodes.gate import gate_node
from orchestrator.nodes.integrate import integrate_node
from orchestrator.nodes.routing import (
    failure_reason,
    route_after_dev,
    route_after_gate,
    route_after_integrate,
    route_after_po,
    route_after_qa,
    route_after_sm,
    route_start,
)
from orchestrator.nodes.stage import make_stage_node, run_stage
from orchestrator.nodes.terminal import done_node, failed_node, over_budget_node

__all__ = [
    "done_node",
    "failed_node",
    "failure_reason",
    "gate_node",
    "integrate_node",
    "make_stage_node",
    "over_budget_node",
    "route_after_dev",
    "route_after_gate",
    "route_after_integrate",
    "route_after_po",
    "route_after_qa",
    "route_after_sm",
    "route_start",
    "run_stage",
]
