"""`--simulate`: the whole run rehearsed on a scratch copy of the project, never in it.

The simulated agent writes story files, gates and Done statuses, and a worktree run makes
branches: in the real project they would make the next real run find every story "already
done". So the repository holding the project (its git history with it, so worktrees and merges
are rehearsed too) is copied under the user's cache folder, the run's project and state dir are
pointed into the copy, and the copy goes when the rehearsal finishes (`--keep` keeps it). An
interrupted or waiting rehearsal keeps its copy, which `--simulate --resume` goes on in.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

from orchestrator.app.config import EpicConfig
from orchestrator.defaults import ExitCode
from orchestrator.errors import GitError, InputError
from orchestrator.git import Git, find_toplevel

FOLDER = Path("bmad-orchestrator") / "rehearsals"
FINISHED = (ExitCode.OK, ExitCode.FAILED)


def rehearsals_folder() -> Path:
    """Where rehearsal copies live: `$XDG_CACHE_HOME` (or `~/.cache`)/bmad-orchestrator/."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / FOLDER


def scratch_folder(config: EpicConfig) -> Path:
    """The one rehearsal folder of this epic (a new rehearsal replaces it, a resume reuses it)."""
    epic = str(config.source or config.project / "epic.yaml")
    digest = hashlib.sha256(epic.encode()).hexdigest()[:12]
    return rehearsals_folder() / f"{config.project.name[:40]}-{digest}"


def rehearsal_config(config: EpicConfig, *, resume: bool) -> tuple[EpicConfig, Path]:
    """`config` pointed into a scratch copy of its repository (made, or reused to resume), and
    the copy's folder."""
    project = config.project
    toplevel = find_toplevel(project) or project
    folder = scratch_folder(config)
    copy = folder / (toplevel.name or "project")
    if resume:
        if not copy.is_dir():
            raise InputError(
                f"no rehearsal of this epic to resume (looked in {folder}): run it with --simulate"
            )
    else:
        _fresh_copy(toplevel, copy, skip=config.state_dir)
    inside = project.relative_to(toplevel)
    try:
        state_dir = copy / config.state_dir.relative_to(toplevel)
    except ValueError:  # a state dir outside the repository: the rehearsal keeps its own
        state_dir = folder / "state"
    moved = config.model_copy(update={"project": copy / inside, "state_dir": state_dir})
    return moved, folder


def _fresh_copy(toplevel: Path, copy: Path, *, skip: Path) -> None:
    """`toplevel` copied to `copy` (links as links), without the state dir and without the
    registrations of the real worktrees; a `.git` file (a worktree, a submodule) becomes a
    repository of the copy's own, so nothing the rehearsal does reaches the real one."""
    if copy.parent.exists():
        shutil.rmtree(copy.parent)
    copy.parent.mkdir(parents=True, mode=0o700)
    git_dir = toplevel / ".git"
    skipped = {Path(os.path.realpath(skip))}

    def ignore(folder: str, names: list[str]) -> list[str]:
        here = Path(os.path.realpath(folder))
        left = [n for n in names if here / n in skipped]
        if here == Path(os.path.realpath(toplevel)) and git_dir.is_file():
            left.append(".git")
        if here == Path(os.path.realpath(git_dir)):
            left.append("worktrees")  # the real worktrees are the real project's
        return left

    shutil.copytree(toplevel, copy, symlinks=True, ignore=ignore)
    if git_dir.is_file():
        try:
            Git(toplevel).run("clone", "--quiet", "--bare", str(toplevel), str(copy / ".git"))
            Git(copy).run("config", "core.bare", "false")
            Git(copy).run("reset", "--quiet")
        except GitError as exc:
            raise InputError(f"could not copy the repository for the rehearsal: {exc}") from None


def rehearse(
    config: EpicConfig, start: Callable[[EpicConfig], int], *, resume: bool, keep: bool
) -> int:
    """Run `start` on a scratch copy; says where, and what is left of it at the end."""
    moved, folder = rehearsal_config(config, resume=resume)
    print(f"rehearsal: in a copy of the project, {moved.project} (the project is not touched)")
    code = start(moved)
    if code in FINISHED and not keep:
        shutil.rmtree(folder, ignore_errors=True)
        print("rehearsal: the copy is removed (--keep keeps it)", flush=True)
    elif code in FINISHED:
        print(f"rehearsal: kept in {folder}", flush=True)
    else:
        again = shlex.join(["bmad-orchestrator", str(config.source), "--simulate", "--resume"])
        print(f"rehearsal: kept in {folder}; go on with: {again}", flush=True)
    return code
