"""Every error the orchestrator raises on purpose, in one place.

```
OrchestratorError
├── InputError                 the user's input or environment is wrong: exit 2, no traceback
│   ├── ConfigError            epic.yaml is missing, unreadable or invalid
│   ├── YamlFileError          a YAML file is not UTF-8, too big, too deep, an alias bomb, or
│   │                          repeats a key
│   ├── ProjectError           the BMad project cannot be driven (its config, layout, version)
│   ├── StateDirError          the state dir is unsafe (a link, not ours, shared) or unwritable
│   ├── RunLockedError         another live run holds this state dir
│   ├── CheckpointError        the checkpoint file is corrupt or truncated
│   ├── EpicChangedError       --resume against an epic.yaml that changed since the run began
│   ├── IsolationError         worktree isolation cannot start (no repository, uncommitted changes)
│   └── DiskFullError          the disk or quota is full: the run stops, resumable
├── GitError                   a git command failed or passed its deadline (it is killed)
├── DeadlineExceeded           a blocking call did not return in time (its thread is abandoned)
└── TmuxError                  a tmux command failed
    ├── SessionNotFound        no session of that exact name
    └── DeliveryError          typed text could not be delivered and confirmed
```

The CLI maps `InputError` to exit 2 with its message; anything else is an internal error.
"""

from __future__ import annotations

import errno


class OrchestratorError(Exception):
    """Base of every error raised on purpose by the orchestrator."""


class InputError(OrchestratorError, ValueError):
    """Bad input or environment: the message says what is wrong and what to do."""


class ConfigError(InputError):
    """epic.yaml is missing, unreadable or invalid; the message names the field."""


class YamlFileError(InputError):
    """A YAML file the user or a repository controls cannot be read safely; says which and why."""


class ProjectError(InputError):
    """The BMad project cannot be driven as it is (its config, its layout or its version)."""


class StateDirError(InputError):
    """The state dir (or a path inside it) is unsafe to write, or cannot be written."""


class RunLockedError(InputError):
    """Another live run holds the state dir's run lock."""


class CheckpointError(InputError):
    """The checkpoint database is corrupt or truncated."""


class EpicChangedError(InputError):
    """epic.yaml changed since the run being resumed began."""


class IsolationError(InputError):
    """Stories cannot get worktrees of their own here (no git repository, uncommitted changes)."""


class GitError(OrchestratorError, RuntimeError):
    """A git command failed; the message holds git's own last lines."""


class TmuxError(OrchestratorError, RuntimeError):
    """A tmux command failed."""


class SessionNotFound(TmuxError, LookupError):
    """No session of that exact name on this manager's server."""


class DeliveryError(TmuxError):
    """Typed text could not be delivered and confirmed."""


class DeadlineExceeded(OrchestratorError, TimeoutError):
    """A blocking call (tmux, git, a file) did not return within its whole-operation deadline."""


class DiskFullError(InputError):
    """The disk (or the user's quota) is full: the run stops, resumable once space is freed."""


def full_disk(exc: BaseException) -> DiskFullError | None:
    """`exc` as a DiskFullError when it (or what caused it) says the disk is full, else None."""
    if isinstance(exc, DiskFullError):
        return exc
    seen: BaseException | None = exc
    while seen is not None:
        full = isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT)
        said = str(seen)  # SQLite's words, and the system's as git or a tool quote them
        if full or "database or disk is full" in said or "No space left on device" in said:
            return DiskFullError(
                f"the disk is full ({seen}): free some space, then run again with --resume"
            )
        seen = seen.__cause__ or seen.__context__
    return None
