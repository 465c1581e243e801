"""Whether a project can run stories in worktrees, and the names and patterns that takes."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from orchestrator.errors import IsolationError
from orchestrator.git.repo import MIN_VERSION, Git, git_available, git_version

_SPECIAL = re.compile(r"([*?\[\\])")


def ignore_pattern(path: str) -> str:
    """`path` (relative to the repository root) as an anchored, literal gitignore pattern."""
    escaped = _SPECIAL.sub(r"\\\1", path.strip("/"))
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def exclude_locally(git: Git, relative: str) -> Path:
    """Add `relative` (a folder, from the repository root) to the repository's own
    `info/exclude` as a literal anchored pattern, never to a tracked file; the file it wrote."""
    exclude = git.cwd / git.run("rev-parse", "--git-path", "info/exclude").strip()
    exclude.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(exclude, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        size = os.fstat(fd).st_size
        ends_cleanly = size == 0 or os.pread(fd, 1, size - 1) == b"\n"
        os.write(fd, f"{'' if ends_cleanly else chr(10)}{ignore_pattern(relative)}/\n".encode())
    finally:
        os.close(fd)
    return exclude


def default_branch(stem: str) -> str:
    """`bmad/{stem}` with the stem reduced to what a branch name may hold."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned).removesuffix(".lock") or "epic"
    return f"bmad/{cleaned}"


def find_toplevel(project: Path) -> Path | None:
    """The root of the git work tree holding `project`, or None (no git, or not in one)."""
    if not git_available():
        return None
    done = Git(project).completed("rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        return None
    return Path(done.stdout.decode().strip())


def tracks_project(project: Path) -> bool:
    """Whether the repository holding `project` tracks anything inside it."""
    done = Git(project).completed("ls-files", "-z", "--", ".", check=False)
    return done.returncode == 0 and bool(done.stdout.strip(b"\0"))


def check_repository(project: Path, *, new_run: bool, epic: Path | None = None) -> Path:
    """The repository root, or IsolationError saying why stories cannot get worktrees here.

    A new run refuses uncommitted changes to tracked files, except to the epic file itself
    (its stories and settings are read from disk, not from a worktree).
    """
    shared = "or set `isolation: shared` in epic.yaml to run every story in the project folder"
    if not git_available():
        raise IsolationError(f"isolation: worktree needs git on PATH ({shared})")
    if git_version() < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        raise IsolationError(f"isolation: worktree needs git {need} or newer ({shared})")
    toplevel = find_toplevel(project)
    if toplevel is None:
        raise IsolationError(
            f"isolation: worktree needs a git repository, and {project} is not in one: "
            f"run `git init && git add -A && git commit -m 'Initial commit'` there, {shared}"
        )
    git = Git(project)
    if not git.ok("rev-parse", "-q", "--verify", "HEAD^{commit}"):
        raise IsolationError(
            f"isolation: worktree: the repository at {toplevel} has no commit yet: commit the "
            f"project first (`git add -A && git commit -m 'Initial commit'`), {shared}"
        )
    if not tracks_project(project):
        raise IsolationError(
            f"isolation: worktree: git tracks nothing in {project} (is it ignored by "
            f"{toplevel}?): a worktree would not hold the project; commit it, {shared}"
        )
    if new_run:
        pathspec = ["--", "."]
        if epic is not None and epic.resolve().is_relative_to(toplevel.resolve()):
            pathspec.append(f":(exclude,literal){epic.resolve().relative_to(toplevel.resolve())}")
        changed = Git(toplevel).lines(
            "status", "--porcelain=v1", "-z", "--untracked-files=no", *pathspec
        )
        if changed:
            names = [entry[3:] for entry in changed if len(entry) > 3][:5]
            more = f" and {len(changed) - len(names)} more" if len(changed) > len(names) else ""
            raise IsolationError(
                f"isolation: worktree: {toplevel} has uncommitted changes to tracked files "
                f"({', '.join(names)}{more}); the stories' worktrees start from the last commit "
                f"and would not see them. Commit them (`git commit -am ...`) or stash them "
                f"(`git stash`), {shared}"
            )
    return toplevel


def user_excludes(git: Git) -> str:
    """The user's global excludes file, whose rules must keep holding in worktrees."""
    configured = git.completed("config", "--path", "core.excludesFile", check=False)
    path = configured.stdout.decode().strip()
    if not path:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
        path = os.path.join(base, "git", "ignore")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(1 << 20)
    except OSError:
        return ""


def untracked_files(project: Path, *, besides: Sequence[str] = ()) -> list[str]:
    """Files in `project` git does not track and does not ignore, except those under `besides`
    (globs: the method's install, the state dir). A worktree starts without them."""
    excludes = [f":(exclude,glob){pattern.strip('/')}/**" for pattern in besides]
    excludes += [f":(exclude,glob){pattern.strip('/')}" for pattern in besides]
    done = Git(project).completed(
        "ls-files", "-z", "--others", "--exclude-standard", "--", ".", *excludes, check=False
    )
    return [name for name in done.stdout.decode(errors="replace").split("\0") if name]
