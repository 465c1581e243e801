"""Git for the orchestrator: unattended git commands, and a worktree and branch per story.

Knows nothing of BMad: the method says which installed files a worktree needs, the story graph
says when to commit and merge.
"""

from orchestrator.git.checks import (
    check_repository,
    default_branch,
    find_toplevel,
    tracks_project,
)
from orchestrator.git.merges import (
    MergeResult,
    begin_resolve,
    bring_home,
    commit,
    commits_ahead,
    describe_commit,
    merge_story,
    unresolved,
)
from orchestrator.git.repo import Git, git_available
from orchestrator.git.worktrees import INTEGRATION, Workspace, Worktrees

__all__ = [
    "INTEGRATION",
    "Git",
    "MergeResult",
    "Workspace",
    "Worktrees",
    "begin_resolve",
    "bring_home",
    "check_repository",
    "commit",
    "commits_ahead",
    "default_branch",
    "describe_commit",
    "find_toplevel",
    "git_available",
    "merge_story",
    "tracks_project",
    "unresolved",
]
