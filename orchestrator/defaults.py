"""The one definition of every default and exit code the orchestrator uses."""

from __future__ import annotations

from enum import IntEnum

DEFAULT_SOCKET = "bmad"
DEFAULT_PREFIX = "bmad"
STATE_DIR_NAME = ".bmad-orchestrator"
DEFAULT_STALL_TIMEOUT = 300.0
DEFAULT_LOG_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 2
DEFAULT_MAX_REVISIONS = 1  # SM rewrites after a PO NO-GO
DEFAULT_MAX_FIX_ROUNDS = 2  # Dev fix rounds after a failing QA review
DEFAULT_TIMEOUTS = {"sm": 600.0, "po": 300.0, "dev": 1800.0, "qa": 900.0}  # seconds, by stage
DEFAULT_SETTLE = 5.0  # seconds of quiet after a valid output that end an agent's turn
DEFAULT_NUDGES = 2  # nudges per attempt when the agent stops without its output
DEFAULT_MAX_MERGE_ROUNDS = 1  # Dev rounds resolving a conflict with the integration branch
DEFAULT_SETUP_TIMEOUT = 1800.0  # seconds `git.setup` may take in a new worktree


class ExitCode(IntEnum):
    """Process exit codes of `python -m orchestrator` (README, docs/guide.md)."""

    OK = 0
    FAILED = 1  # a story failed, hit an internal error, or was skipped
    BAD_INPUT = 2  # bad input or environment; nothing was started
    WAITING = 3  # stories wait for a person (approve / reject / reply), then --resume
    INTERRUPTED = 130  # SIGINT, SIGTERM or SIGHUP: sessions killed, run resumable
