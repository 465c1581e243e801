"""Commits on a story's branch, and merges one at a time into the integration branch and home.

Every function takes the run's `Worktrees` and works under its lock. Nothing here ever leaves a
half merge behind: a conflicting merge into the integration branch (or into the user's branch) is
aborted at once, and conflict markers are never committed.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import GitError
from orchestrator.git.repo import Git
from orchestrator.git.worktrees import HOME, Workspace, Worktrees

_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.M)


@dataclass(frozen=True)
class MergeResult:
    """How a merge went: merged (with the commit it made), or the files that conflicted."""

    merged: bool
    commit: str | None = None
    conflicts: tuple[str, ...] = ()


def unresolved(trees: Worktrees, workspace: Workspace, files: Sequence[str] = ()) -> list[str]:
    """Files still in conflict: unmerged in the index, or among `files` and holding markers."""
    left = trees.git(workspace).lines("diff", "--name-only", "--diff-filter=U", "-z")
    for name in files:
        path = workspace.root / name
        if name in left or path.is_symlink() or not path.is_file():
            continue
        with contextlib.suppress(OSError):
            text = path.read_text(errors="replace")
            if "<<<<<<< " in text and _MARKER.search(text):
                left.append(name)
    return left


def commit(
    trees: Worktrees, workspace: Workspace, message: str, *, files: Sequence[str] = ()
) -> str | None:
    """Commit every change in the worktree: the new commit's id, or None when nothing changed.

    Nothing is committed while conflicts are unresolved (markers must never land); a merge in
    progress whose conflicts are resolved is concluded.
    """
    with trees.locked():
        if unresolved(trees, workspace, files):
            return None
        git = trees.git(workspace)
        git.run("add", "--all", "--", ".")
        if not git.merging() and git.ok("diff", "--cached", "--quiet"):
            return None
        return git.commit("-m", message)


def describe_commit(trees: Worktrees, commit_id: str) -> str:
    """`{short id} {subject}` of one commit."""
    return trees.main.run("log", "-1", "--format=%h %s", commit_id).strip()


def merge_story(trees: Worktrees, workspace: Workspace, message: str) -> MergeResult:
    """Merge the story's branch into the integration branch (`--no-ff`), or name the conflicts.

    A conflict is aborted at once, so the integration branch never holds a half merge; a branch
    merged already (a resumed run) counts as merged.
    """
    with trees.locked():
        git = trees.git(trees.prepare())
        if git.ok("merge-base", "--is-ancestor", workspace.branch, trees.branch):
            return MergeResult(True, commit=git.head())
        if git.merging():  # a crash between a conflict and its abort
            git.run("merge", "--abort")
        done = git.merge(workspace.branch, message)
        if done.returncode == 0:
            return MergeResult(True, commit=git.head())
        conflicts = git.lines("diff", "--name-only", "--diff-filter=U", "-z")
        if git.merging():
            git.run("merge", "--abort")
        if not conflicts:
            stderr = done.stderr.decode(errors="replace").strip()[-400:]
            raise GitError(f"merging {workspace.branch} into {trees.branch} failed: {stderr}")
        return MergeResult(False, conflicts=tuple(conflicts))


def begin_resolve(
    trees: Worktrees, workspace: Workspace, message: str, *, files: Sequence[str] = ()
) -> list[str]:
    """Merge the integration branch into the story's, leaving the conflicts for its Dev.

    Idempotent (a merge in progress, or one already made, is left as it is); returns the files in
    conflict (`files`: those that conflicted before, checked for markers too).
    """
    with trees.locked():
        git = trees.git(workspace)
        if git.merging():
            return unresolved(trees, workspace, files)
        if git.ok("merge-base", "--is-ancestor", trees.branch, workspace.branch):
            return []
        done = git.merge(trees.branch, message)
        if done.returncode == 0:
            return []
        conflicts = unresolved(trees, workspace)
        if not conflicts:
            stderr = done.stderr.decode(errors="replace").strip()[-400:]
            raise GitError(f"merging {trees.branch} into {workspace.branch} failed: {stderr}")
        return conflicts


def commits_ahead(trees: Worktrees, target: str) -> int:
    """How many commits the integration branch has that `target` lacks."""
    if not trees.branch_exists(trees.branch):
        return 0
    return int(trees.main.run("rev-list", "--count", f"{target}..{trees.branch}").strip() or 0)


def bring_home(trees: Worktrees, into: str) -> str:
    """Merge the integration branch into `into` when its checkout is clean; says what happened.

    Where `into` is checked out, the merge happens there (the user asked for it with
    `git.merge_into`); elsewhere in a temporary worktree.
    """
    with trees.locked():
        if not trees.branch_exists(into):
            by_hand = _command("merge", trees.branch)
            return f"git.merge_into: no branch {into!r}; merge by hand: {by_hand}"
        if commits_ahead(trees, into) == 0:
            return f"{into} already holds everything on {trees.branch}"
        checkout = trees.checkout_of(into)
        temporary = checkout is None
        if checkout is None:
            checkout = trees.add_home(into)
        git = Git(checkout)
        try:
            if git.lines("status", "--porcelain=v1", "-z", "--untracked-files=no"):
                return (
                    f"not merged into {into}: its checkout has uncommitted changes; once it is "
                    f"clean, run {_command('-C', str(checkout), 'merge', trees.branch)}"
                )
            done = git.merge(trees.branch, f"Merge {trees.branch} (bmad-orchestrator)")
            if done.returncode != 0:
                if git.merging():
                    git.run("merge", "--abort")
                return (
                    f"not merged into {into}: the merge conflicts; run "
                    f"{_command('-C', str(checkout), 'merge', trees.branch)}, resolve and commit"
                )
            return f"merged {trees.branch} into {into} ({git.head()[:12]})"
        finally:
            if temporary:
                trees.remove_path(trees.folder / HOME)


def _command(*args: str) -> str:
    """A git command as it may be pasted into a shell (every part quoted)."""
    return shlex.join(["git", *args])
