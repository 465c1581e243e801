"""Running git for the orchestrator: argv only, never a prompt, never a user's hook.

Every command the orchestrator runs is unattended and must neither wait for a person (a
credential prompt, an editor, a signing passphrase) nor run code a repository chose (hooks run on
commit, merge and checkout). Identity falls back to `bmad-orchestrator` when the user has none, so
a commit never fails for want of `user.name`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator import commands
from orchestrator.errors import GitError

# Settings for the orchestrator's own git commands only (never written to any config file).
UNATTENDED_CONFIG = (
    ("core.hooksPath", "/dev/null"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("gc.auto", "0"),
    ("core.editor", "true"),
    ("merge.autoStash", "false"),
    ("advice.detachedHead", "false"),
)
FALLBACK_IDENTITY = (
    ("user.name", "bmad-orchestrator"),
    ("user.email", "bmad-orchestrator@localhost"),
)
# Inherited variables that would point git at another repository or index than the one asked.
REPOSITORY_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
# Whole-command deadline: far above any merge or status of a real repository, and what a
# merge driver or filter that never returns costs before the story goes on without it.
GIT_TIMEOUT = 600.0
MIN_VERSION = (2, 31)  # GIT_CONFIG_COUNT, `worktree add` and `merge --abort` as used here


def git_available() -> bool:
    """Whether a `git` binary is on PATH."""
    return shutil.which("git") is not None


def git_version() -> tuple[int, ...]:
    """The installed git's version, e.g. (2, 39, 5); raises GitError without git."""
    out = Git(Path.cwd()).run("--version")
    digits = out.split()[-1].split(".")
    return tuple(int(part) for part in digits if part.isdigit())


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without repository overrides, never prompting."""
    env = {k: v for k, v in os.environ.items() if k not in REPOSITORY_VARIABLES}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_EDITOR": "true",
            "GIT_MERGE_AUTOEDIT": "no",
            "GIT_ASKPASS": "true",
            "SSH_ASKPASS": "true",
            "LC_ALL": "C",
        }
    )
    env.update(extra or {})
    return env


class Git:
    """git in one working directory. `run` returns stdout; a failure raises `GitError`."""

    def __init__(
        self,
        cwd: Path,
        *,
        config: Sequence[tuple[str, str]] = (),
        env: Mapping[str, str] | None = None,
        timeout: float = GIT_TIMEOUT,
    ) -> None:
        self.cwd = Path(cwd)
        self.config = tuple(config)
        self.env = dict(env or {})
        self.timeout = timeout
        self._identity: tuple[tuple[str, str], ...] | None = None

    def __repr__(self) -> str:
        return f"Git({str(self.cwd)!r})"

    def at(self, cwd: Path) -> Git:
        """The same settings in another working directory (a worktree of the same repository)."""
        other = Git(cwd, config=self.config, env=self.env, timeout=self.timeout)
        other._identity = self._identity
        return other

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = ["git"]
        for key, value in (*UNATTENDED_CONFIG, *self.config):
            argv += ["-c", f"{key}={value}"]
        return argv + list(args)

    def completed(
        self, *args: str, input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git args...`; with `check`, a non-zero exit raises GitError. Past `timeout`
        seconds git and everything it started (merge drivers, filters) are stopped and GitError
        says so."""
        try:
            done = commands.run(
                self._argv(args),
                cwd=self.cwd,
                env=clean_environment(self.env),
                input=input,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            raise GitError(
                f"git {' '.join(args[:3])} did not finish within {self.timeout:g} s; it was stopped"
            ) from None
        except FileNotFoundError as exc:
            if not self.cwd.is_dir():
                raise GitError(f"git {args[0]}: folder {self.cwd} does not exist") from None
            raise GitError(f"git is not installed or not on PATH ({exc})") from None
        if check and done.returncode != 0:
            raise GitError(_describe(args, done))
        return done

    def run(self, *args: str, input: bytes | None = None) -> str:
        """Run `git args...` and return its stdout as text; non-zero exit raises GitError."""
        return self.completed(*args, input=input).stdout.decode(errors="replace")

    def ok(self, *args: str) -> bool:
        """Whether `git args...` exits 0 (its output is discarded)."""
        return self.completed(*args, check=False).returncode == 0

    def lines(self, *args: str) -> list[str]:
        """The NUL-separated records `git args... -z` prints."""
        out = self.completed(*args).stdout.decode(errors="surrogateescape")
        return [item for item in out.split("\0") if item]

    def identity(self) -> tuple[tuple[str, str], ...]:
        """`-c` pairs giving commits an author when the user configured none."""
        if self._identity is None:
            has_name = bool(self.completed("config", "user.name", check=False).stdout.strip())
            has_email = bool(self.completed("config", "user.email", check=False).stdout.strip())
            self._identity = () if has_name and has_email else FALLBACK_IDENTITY
        return self._identity

    def _identity_args(self) -> list[str]:
        return [arg for key, value in self.identity() for arg in ("-c", f"{key}={value}")]

    def commit(self, *args: str) -> str:
        """`git commit args...` with an identity; returns the new commit's id."""
        self.run(*self._identity_args(), "commit", "--no-verify", "--quiet", *args)
        return self.head()

    def merge(self, branch: str, message: str) -> subprocess.CompletedProcess[bytes]:
        """`git merge --no-ff` of `branch` with an identity; the caller reads its exit status."""
        return self.completed(
            *self._identity_args(), "merge", "--no-ff", "--no-edit", "-m", message, branch,
            check=False,
        )  # fmt: skip

    def merging(self) -> bool:
        """Whether a merge is in progress here."""
        return self.ok("rev-parse", "-q", "--verify", "MERGE_HEAD")

    def head(self) -> str:
        """The id of the checked-out commit."""
        return self.run("rev-parse", "HEAD").strip()


def _describe(args: Sequence[str], done: subprocess.CompletedProcess[bytes]) -> str:
    text = (done.stderr or done.stdout).decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()][-6:]
    detail = "; ".join(lines) or f"exit status {done.returncode}"
    return f"git {' '.join(args[:3])} failed: {detail}"
