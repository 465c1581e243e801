"""Agent CLIs: how each one starts, signals and is answered (profiles), and a simulated one."""

from orchestrator.agents.profiles import PROFILE_NAMES, AgentProfile, Dialog, make_profile

__all__ = ["PROFILE_NAMES", "AgentProfile", "Dialog", "make_profile"]
