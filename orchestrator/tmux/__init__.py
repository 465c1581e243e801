"""The tmux runtime: agent sessions on a tmux server, knowing nothing of BMad or the graph."""

from orchestrator.tmux.model import AgentSession, SessionInfo
from orchestrator.tmux.names import attach_command, new_run_id, sanitise, socket_path, tmux_literal
from orchestrator.tmux.server import TmuxServer
from orchestrator.tmux.sessions import SessionProbe, TmuxAgentManager

__all__ = [
    "AgentSession",
    "SessionInfo",
    "SessionProbe",
    "TmuxAgentManager",
    "TmuxServer",
    "attach_command",
    "new_run_id",
    "sanitise",
    "socket_path",
    "tmux_literal",
]
