"""A git worktree and branch per story, merged one at a time into an integration branch.

The user's own checkout is never touched: the run works on an integration branch checked out in
`{state_dir}/worktrees/_integration`, and each story on `{branch}--{story}` in
`{state_dir}/worktrees/{story}`, created from the integration branch when the story starts (so a
story starts from its dependencies' merged work). Files a method's installer leaves untracked or
ignored (a BMad install, agent command folders) are copied into each worktree, so agents find
their commands, and kept out of every commit by an excludes file that both the orchestrator's
git commands and the agents' sessions use. Every change to refs or worktrees happens under one
lock (a thread lock and an flock), so parallel stories merge one at a time, deterministically.
Longer than 400 lines because worktree lifecycle (make, adopt after a crash, prune, remove) and
its lock are one mechanism.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from orchestrator import commands
from orchestrator.errors import GitError, IsolationError
from orchestrator.files import StateDir, open_private, write_private
from orchestrator.git.checks import (
    exclude_locally,
    find_toplevel,
    ignore_pattern,
    user_excludes,
)
from orchestrator.git.drivers import MergeDrivers
from orchestrator.git.recovery import clear_stale_lock, settle_own_checkout
from orchestrator.git.repo import Git

# Story ids start with a letter or digit, so no story's worktree can take these names.
INTEGRATION = "_integration"
HOME = "_home"  # a moment's checkout of `git.merge_into` when it is checked out nowhere
WORKTREES_DIR = "worktrees"
GIT_DIR = "git"  # in the state dir: the lock, the excludes file, setup markers and logs


@dataclass(frozen=True)
class Workspace:
    """One worktree: its branch, its checkout, and the project folder inside the checkout."""

    name: str
    branch: str
    root: Path
    project: Path


class Worktrees:
    """The worktrees and branches of one state dir's runs (blocking: call from a thread)."""

    def __init__(
        self,
        project: Path,
        state_dir: Path,
        *,
        branch: str,
        install: Sequence[str] = (),
        setup: Sequence[Sequence[str]] = (),
        setup_timeout: float = 1800.0,
        merge_drivers: Mapping[str, Sequence[str]] = MappingProxyType({}),
        session_files: Sequence[str] = (),
    ) -> None:
        self.project = Path(os.path.abspath(project))
        self.state = StateDir(state_dir)
        self.branch = branch
        self.install = tuple(install)
        self.session_files = tuple(session_files)
        self.setup_commands = [list(command) for command in setup]
        self.setup_timeout = setup_timeout
        self.drivers = MergeDrivers(merge_drivers, self.state.root / GIT_DIR / "attributes")
        toplevel = find_toplevel(self.project)
        if toplevel is None:
            raise IsolationError(f"{self.project} is not in a git repository")
        self.toplevel = Path(os.path.realpath(toplevel))
        self.relative = Path(os.path.relpath(os.path.realpath(self.project), self.toplevel))
        self.main = Git(self.project)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._prepared = False
        self.recovered: list[str] = []  # what a killed run had left, and was cleared

    # --- places -----------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """Where the worktrees live."""
        return self.state.root / WORKTREES_DIR

    @property
    def excludes_file(self) -> Path:
        """The excludes file every git command in a worktree uses (install copies, user's own)."""
        return self.state.root / GIT_DIR / "excludes"

    def story_branch(self, story_id: str) -> str:
        """The branch of one story."""
        return f"{self.branch}--{story_id}"

    def _workspace(self, name: str, branch: str) -> Workspace:
        root = self.folder / name
        return Workspace(name, branch, root, root / self.relative)

    def git(self, workspace: Workspace) -> Git:
        """git in a worktree: its install copies excluded, the method's merge drivers in force."""
        config = [("core.excludesFile", str(self.excludes_file)), *self.drivers.config()]
        return Git(workspace.root, config=config)

    def session_env(self) -> dict[str, str]:
        """Environment for an agent in a worktree: its own git commands skip the install copies."""
        index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
        return {
            "GIT_CONFIG_COUNT": str(index + 1),
            f"GIT_CONFIG_KEY_{index}": "core.excludesFile",
            f"GIT_CONFIG_VALUE_{index}": str(self.excludes_file),
        }

    # --- the lock ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The run-wide lock over refs and worktrees (re-entrant in this process)."""
        with self._thread_lock:
            if self._depth == 0:
                path = self.state.file(Path(GIT_DIR) / "lock")
                self._lock_fd = open_private(path, os.O_RDWR)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    os.close(self._lock_fd)  # closing releases the flock
                    self._lock_fd = None

    # --- worktrees --------------------------------------------------------------------------

    def registered(self) -> dict[Path, str]:
        """Worktrees git knows of: real path -> branch ref ("" when detached)."""
        found: dict[Path, str] = {}
        path: Path | None = None
        for line in self.main.run("worktree", "list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                path = Path(os.path.realpath(line.removeprefix("worktree ")))
                found[path] = ""
            elif line.startswith("branch ") and path is not None:
                found[path] = line.removeprefix("branch ")
        return found

    def branch_exists(self, branch: str) -> bool:
        """Whether the local branch exists."""
        return self.main.ok("show-ref", "--verify", "--quiet", f"refs/heads/{branch}")

    def checkout_of(self, branch: str, *, besides: Path | None = None) -> Path | None:
        """Where `branch` is checked out (other than at `besides`), if anywhere."""
        skip = Path(os.path.realpath(besides)) if besides is not None else None
        for path, ref in self.registered().items():
            if ref == f"refs/heads/{branch}" and path != skip:
                return path
        return None

    def _checkout(self, name: str, branch: str, *, start: str) -> tuple[Workspace, bool]:
        """The worktree `name` on `branch` (created from `start` if missing); True if new."""
        workspace = self._workspace(name, branch)
        root = workspace.root
        real = Path(os.path.realpath(root))
        registered = self.registered()
        if real in registered:
            if registered[real] != f"refs/heads/{branch}":
                have = registered[real].removeprefix("refs/heads/") or "a detached HEAD"
                raise GitError(f"worktree {root} is on {have}, not on {branch}: move it away")
            if root.is_dir():
                return workspace, False
        self.main.run("worktree", "prune")
        if os.path.lexists(root):
            if root.is_dir() and not root.is_symlink() and not any(root.iterdir()):
                root.rmdir()
            else:
                raise GitError(
                    f"{root} exists but is not a worktree of {self.toplevel}: move it away"
                )
        self.state.folder(WORKTREES_DIR)
        if self.branch_exists(branch):
            elsewhere = self.checkout_of(branch, besides=root)
            if elsewhere is not None:
                raise IsolationError(
                    f"branch {branch} is checked out in {elsewhere}: switch that checkout to "
                    "another branch (e.g. `git switch -`), then run again"
                )
            self.main.run("worktree", "add", "--quiet", str(root), branch)
        else:
            self.main.run("worktree", "add", "--quiet", "-b", branch, str(root), start)
        return workspace, True

    def prepare(self) -> Workspace:
        """The integration branch and worktree, created when missing; idempotent."""
        with self.locked():
            workspace = self._workspace(INTEGRATION, self.branch)
            if self._prepared and workspace.root.is_dir():
                return workspace
            self.state.prepare()
            self._exclude_state_dir()
            if not self.branch_exists(self.branch):
                self.main.run("branch", self.branch, "HEAD")
            self._write_excludes()
            workspace, _ = self._checkout(INTEGRATION, self.branch, start=self.branch)
            self.recovered += settle_own_checkout(self.git(workspace))
            self._copy_install(workspace)
            self._prepared = True
            return workspace

    def existing(self, story_id: str) -> Workspace | None:
        """The story's worktree if it has one (a checkout on its branch), else None."""
        return self._found(story_id, self.story_branch(story_id))

    def integration(self) -> Workspace | None:
        """The integration worktree if it is checked out, else None (nothing is created)."""
        return self._found(INTEGRATION, self.branch)

    def _found(self, name: str, branch: str) -> Workspace | None:
        workspace = self._workspace(name, branch)
        real = Path(os.path.realpath(workspace.root))
        if self.registered().get(real) == f"refs/heads/{branch}" and workspace.root.is_dir():
            return workspace
        return None

    def story(self, story_id: str) -> Workspace:
        """The story's worktree, created from the integration branch when missing.

        An existing branch is checked out as it is (a resumed or repeated run goes on from its
        own work); the install copies are made and `git.setup` runs before first use.
        """
        with self.locked():
            self.prepare()
            branch = self.story_branch(story_id)
            workspace, new = self._checkout(story_id, branch, start=self.branch)
            if not new and (note := clear_stale_lock(self.git(workspace))):
                self.recovered.append(note)
        if not self._ready_marker(story_id).exists():
            self._copy_install(workspace)
            self._run_setup(workspace)
            write_private(self._ready_marker(story_id), "")
        return workspace

    def _ready_marker(self, story_id: str) -> Path:
        return self.state.file(Path(GIT_DIR) / f"{story_id}.ready")

    def has_story_branch(self, story_id: str) -> bool:
        """Whether the story has a branch, merged or not."""
        return self.branch_exists(self.story_branch(story_id))

    def merged(self, story_id: str) -> bool:
        """Whether the story's branch exists and is merged into the integration branch."""
        branch = self.story_branch(story_id)
        return self.branch_exists(branch) and self.main.ok(
            "merge-base", "--is-ancestor", branch, self.branch
        )

    # --- files --------------------------------------------------------------------------------

    def _exclude_state_dir(self) -> None:
        """Keep the state dir out of git (`info/exclude`) when it lies inside the repository."""
        try:
            relative = Path(os.path.realpath(self.state.root)).relative_to(self.toplevel)
        except ValueError:
            return
        if relative == Path(".") or self.main.ok("check-ignore", "-q", str(self.state.root)):
            return
        exclude_locally(self.main, str(relative))

    def _write_excludes(self) -> None:
        # The project folder is literal; the install paths are the method's own globs.
        prefix = "" if self.relative == Path(".") else ignore_pattern(str(self.relative))
        own = "\n".join(f"{prefix}/{path.strip('/')}" for path in self.install)
        text = user_excludes(self.main).rstrip("\n")
        body = f"{text}\n" if text else ""
        body += f"# the method's install, copied into each worktree by bmad-orchestrator\n{own}\n"
        if self.session_files:
            kept = "\n".join(f"/{pattern.strip('/')}" for pattern in self.session_files)
            body += f"# files agent CLIs keep in a working copy for one session\n{kept}\n"
        write_private(self.state.file(self.excludes_file), body)
        self.drivers.write(self.state)

    def _copy_install(self, workspace: Workspace) -> list[str]:
        """Copy the untracked or ignored install files of the project into the worktree."""
        present = [p for p in self.install if any(self.project.glob(p))]
        if not present:
            return []
        files = self.main.lines("ls-files", "-z", "--others", "--", *present)
        copied: list[str] = []
        for name in files:
            source, target = self.project / name, workspace.project / name
            if os.path.lexists(target):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
            elif source.is_file():
                shutil.copy2(source, target)
            else:
                continue
            copied.append(name)
        return copied

    def _run_setup(self, workspace: Workspace) -> None:
        """`git.setup`: each command in the new worktree, no shell; a failure raises GitError."""
        if not self.setup_commands:
            return
        log_path = self.state.file(Path(GIT_DIR) / f"{workspace.name}.setup.log")
        env = {**os.environ, **self.session_env()}
        for command in self.setup_commands:
            fd = open_private(log_path, os.O_WRONLY | os.O_APPEND)
            with os.fdopen(fd, "ab") as log:
                log.write(f"$ {' '.join(command)}\n".encode())
                log.flush()
                try:
                    done = commands.run(
                        command,
                        cwd=workspace.project,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        timeout=self.setup_timeout,
                    )
                except FileNotFoundError:
                    raise GitError(f"git.setup: {command[0]!r} is not on PATH") from None
                except subprocess.TimeoutExpired:
                    raise GitError(
                        f"git.setup: {' '.join(command)} ran past {self.setup_timeout:g}s "
                        f"(output: {log_path})"
                    ) from None
            if done.returncode != 0:
                raise GitError(
                    f"git.setup: {' '.join(command)} exited {done.returncode} in "
                    f"{workspace.project} (output: {log_path})"
                )

    def add_home(self, branch: str) -> Path:
        """A temporary worktree on `branch`, checked out nowhere else (see `remove_path`)."""
        path = self.folder / HOME
        self.remove_path(path)
        self.state.folder(WORKTREES_DIR)
        self.main.run("worktree", "add", "--quiet", str(path), branch)
        return path

    def remove_path(self, path: Path) -> None:
        """Remove the worktree at `path` if git has one there."""
        if Path(os.path.realpath(path)) in self.registered():
            self.main.run("worktree", "remove", "--force", str(path))
        self.main.run("worktree", "prune")

    def _is_clean(self, workspace: Workspace) -> bool:
        return not self.git(workspace).lines("status", "--porcelain=v1", "-z")

    def remove(self, workspace: Workspace, *, delete_branch: bool) -> None:
        """Remove a clean worktree; its branch too when asked and merged (never otherwise)."""
        with self.locked():
            if workspace.root.is_dir():
                if not self._is_clean(workspace):
                    raise GitError(f"{workspace.root} has uncommitted changes: kept")
                self.main.run("worktree", "remove", "--force", str(workspace.root))
            self.main.run("worktree", "prune")
            self._ready_marker(workspace.name).unlink(missing_ok=True)
            if delete_branch and self.merged(workspace.name):
                self.main.run("branch", "-D", workspace.branch)

    def cleanup(self) -> list[str]:
        """Prune the worktrees of finished runs: merged stories' (with their branches) and the
        integration checkout. A story not merged keeps its branch and worktree, where its merge
        is finished by hand; anything with uncommitted changes is kept."""
        said: list[str] = []
        with self.locked():
            if not self.folder.is_dir():
                return said
            registered = self.registered()
            for entry in sorted(self.folder.iterdir()):
                real = Path(os.path.realpath(entry))
                ref = registered.get(real)
                if ref is None:
                    continue
                branch = ref.removeprefix("refs/heads/")
                workspace = self._workspace(entry.name, branch)
                ours = entry.name.startswith("_")  # the integration (or a home) checkout
                try:
                    git = self.git(workspace)
                    said += settle_own_checkout(git) if ours else [clear_stale_lock(git) or ""]
                except (GitError, IsolationError) as exc:
                    said.append(f"kept {entry}: {exc}")
                    continue
                if not self._is_clean(workspace):
                    said.append(f"kept {entry}: it has uncommitted changes")
                    continue
                if not ours and not self.merged(entry.name):
                    said.append(
                        f"kept {entry} and branch {branch}: it is not merged (finish the merge "
                        "by hand, or drop it: "
                        f"{shlex.join(['git', 'worktree', 'remove', str(entry)])}; "
                        f"{shlex.join(['git', 'branch', '-D', branch])})"
                    )
                    continue
                self.remove(workspace, delete_branch=not ours)
                if ours:
                    said.append(f"removed {entry} (branch {branch} kept)")
                else:
                    said.append(f"removed {entry} and its merged branch {branch}")
            self.main.run("worktree", "prune")
            self._prepared = False
        return [line for line in said if line]
