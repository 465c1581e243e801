"""Which isolation a run uses, and how its work comes home at the end.

`isolation: worktree` gives each story a git worktree and branch of its own; unless epic.yaml
says otherwise it is chosen when stories run in parallel in a project git tracks. The end of a
run says where the merged work is and how to bring it into the user's branch (or does it, when
`git.merge_into` names a branch whose checkout is clean).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.app.config import EpicConfig
from orchestrator.app.runlock import live_holder
from orchestrator.app.runs import StoryReport, last_unfinished
from orchestrator.git import Worktrees, bring_home, commits_ahead, find_toplevel, tracks_project
from orchestrator.git.checks import untracked_files
from orchestrator.git.worktrees import WORKTREES_DIR
from orchestrator.methods import Project, StartAt, StoryStanding, get_method
from orchestrator.state.context import Isolation


def choose_isolation(config: EpicConfig, parallel: int) -> tuple[Isolation, str | None]:
    """The run's isolation, and a note when parallel stories must share the project folder."""
    if config.isolation is not None:
        return config.isolation, None
    committed = find_toplevel(config.project) is not None and tracks_project(config.project)
    if get_method(config.method).commits_itself and committed:
        return "worktree", None  # its agents commit, and refuse to start on a dirty tree
    if parallel <= 1:
        return "shared", None
    if not committed:
        return "shared", (
            f"note: {parallel} stories at once share {config.project}, which is not a committed "
            "git repository: each sees the others' changes. Commit the project to git to give "
            "each story a worktree of its own, or set `isolation: shared` to silence this note"
        )
    return "worktree", None


def untracked_warning(config: EpicConfig, install: Sequence[str]) -> str | None:
    """A warning when files the agents may need are not committed (worktrees lack them)."""
    besides = [*install]
    if config.state_dir.is_relative_to(config.project):
        besides.append(str(config.state_dir.relative_to(config.project)))
    untracked = untracked_files(config.project, besides=besides)
    if not untracked:
        return None
    more = len(untracked) - 5
    shown = ", ".join(untracked[:5]) + (f" and {more} more" if more > 0 else "")
    return (
        f"warning: {len(untracked)} untracked file(s) in the project are not in the stories' "
        f"worktrees, which start from the last commit: {shown}. Commit them if the agents need "
        "them (a PRD, architecture docs, a story drafted by hand)"
    )


def story_standing(
    open_project: Callable[[Path], Project],
    trees: Worktrees | None,
    story_id: str,
    folder: Path,
    *,
    start_at: StartAt | None = None,
    check_out: bool = False,
) -> StoryStanding:
    """Where a story stands: in its own worktree (an earlier run left it), else on the
    integration branch's checkout, else in the project `folder`.

    With `check_out` (a run, not `status`), a story branch left without its worktree is checked
    out again first. A story Done on its own branch but not merged would not start again: its
    standing says so.
    """
    own = trees.existing(story_id) if trees is not None else None
    if trees is not None and own is None and check_out and trees.has_story_branch(story_id):
        own = trees.story(story_id)
    checkout = own or (trees.integration() if trees is not None else None)
    project = open_project(checkout.project if checkout is not None else folder)
    standing = project.standing(story_id, start_at=start_at)
    if trees is None or own is None or standing.start != "done" or trees.merged(story_id):
        return standing
    reason = (
        f"Done on branch {own.branch} but not merged into {trees.branch}: merge it there by "
        "hand, or delete the branch to run the story again"
    )
    return dataclasses.replace(standing, start=None, reason=reason)


def home_lines(
    trees: Worktrees, reports: Sequence[StoryReport], *, merge_into: str | None, finished: bool
) -> list[str]:
    """What the end of a worktree run says: the kept branches, and how the work comes home."""
    lines = [
        f"story {r.story_id}: branch {r.branch} kept (worktree {r.workdir})"
        for r in reports
        if r.branch and r.result not in ("done", "already done")
    ]
    merged = sum(1 for r in reports if r.merge_commit)
    ahead = commits_ahead(trees, "HEAD")
    if ahead == 0:
        lines.append(f"branch {trees.branch}: nothing new to bring home")
    elif merge_into is not None and finished:
        lines.append(bring_home(trees, merge_into))
    else:
        this_run = f"{merged} stor{'y' if merged == 1 else 'ies'} merged by this run"
        lines.append(
            f"branch {trees.branch} holds {ahead} commit{'' if ahead == 1 else 's'} your checkout "
            f"lacks ({this_run}); bring the work home with: "
            + shlex.join(["git", "-C", str(trees.toplevel), "merge", trees.branch])
        )
    return lines


def prune_worktrees(config: EpicConfig) -> list[str]:
    """`cleanup`: remove the worktrees of finished runs (never an unmerged branch)."""
    if not (config.state_dir / WORKTREES_DIR).is_dir():
        return []
    holder = live_holder(config.state_dir)
    if holder is not None:
        return [f"worktrees kept: {holder.describe()} is running"]
    unfinished = last_unfinished(config.state_dir, config.source or config.state_dir)
    if unfinished is not None:
        return [
            f"worktrees kept: run {unfinished.run_id} did not finish and can be resumed "
            "(--resume); run cleanup again once it has"
        ]
    trees = config.story_context("cleanup", isolation="worktree").worktrees()
    assert trees is not None
    return trees.cleanup()
