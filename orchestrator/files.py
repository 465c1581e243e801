"""Files the orchestrator writes: its own state dir, and the shared story files.

Everything the orchestrator keeps about a run (logs, events, checkpoints, reports) may contain
prompts and repository details, so it lives in a `StateDir`: owner-only, never shared with other
users, and never entered or written through a symbolic link (a repository can commit links into
a `.bmad-orchestrator/` folder). Files that agents and users share (story files, gates) are
rewritten atomically so a watcher never reads half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from orchestrator.errors import StateDirError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
# What the orchestrator keeps at the top of a state dir; only these are audited, so a state dir
# shared with other content (`state_dir: .`) is never walked whole.
STATE_ENTRIES = (
    "events.jsonl",
    "run.lock",
    "checkpoints.sqlite",
    "checkpoints.sqlite-wal",
    "checkpoints.sqlite-shm",
    "logs",
    "run",
    "runs",
    "prompts",
    "simulated",
    "git",
    "worktrees",
    "waiting",
    "answers",
)
# Entries audited one level deep only: they hold checkouts of the user's repository, whose own
# links are the repository's business.
SHALLOW_ENTRIES = ("worktrees",)


class StateDir:
    """The orchestrator's own folder. Nothing is created until something is written.

    The root must be a real folder of ours that no one else may write to; it is created 0700
    when missing and left as it is otherwise (an existing folder is never chmod-ed). Folders
    inside it are created 0700 and checked the same way, component by component, so a planted
    link is refused instead of followed.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._ready = False

    def __repr__(self) -> str:
        return f"StateDir({str(self.root)!r})"

    def prepare(self) -> Path:
        """Create the root if missing, or check that it is safe to use; returns it."""
        if not self._ready:
            missing = []
            probe = self.root
            while not os.path.lexists(probe):
                missing.append(probe)
                probe = probe.parent
            for folder in reversed(missing):
                _make_private_dir(folder)
            _check_private_dir(self.root, what="state dir")
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise StateDirError(f"state dir {self.root} is not writable by you")
            self._ready = True
        return self.root

    def folder(self, path: Path | str) -> Path:
        """`path` (inside the root, or relative to it) as a checked folder, created if missing."""
        target = Path(path) if Path(path).is_absolute() else self.root / path
        try:
            relative = Path(os.path.abspath(target)).relative_to(self.root)
        except ValueError:
            raise StateDirError(f"{target} is outside the state dir {self.root}") from None
        current = self.prepare()
        for part in relative.parts:
            current = current / part
            if os.path.lexists(current):
                _check_private_dir(current, what="state folder")
            else:
                _make_private_dir(current)
        return current

    def audit(self) -> None:
        """Refuse a state dir holding links or things not ours (a repository can commit them).

        Run once before a run writes anything: every entry is looked at without following it.
        """
        if not os.path.lexists(self.root):
            return
        self.prepare()
        uid = os.geteuid()
        problems: list[str] = []

        def look(path: str, info: os.stat_result) -> bool:
            """Record a problem with `path`; True when it is a folder to look into."""
            if stat.S_ISLNK(info.st_mode):
                problems.append(f"{path} is a symbolic link")
            elif info.st_uid != uid:
                problems.append(f"{path} belongs to uid {info.st_uid}")
            elif stat.S_ISDIR(info.st_mode):
                if not info.st_mode & 0o022:
                    return True
                problems.append(f"{path} is writable by others")
            return False

        stack = []
        for name in STATE_ENTRIES:
            path = self.root / name
            with contextlib.suppress(FileNotFoundError):
                if look(str(path), os.lstat(path)):
                    if name not in SHALLOW_ENTRIES:
                        stack.append(path)
                        continue
                    with os.scandir(path) as entries:  # checkouts: git chose their modes
                        for entry in entries:
                            info = entry.stat(follow_symlinks=False)
                            if stat.S_ISLNK(info.st_mode) or info.st_uid != uid:
                                look(entry.path, info)
        while stack and len(problems) < 5:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if look(entry.path, entry.stat(follow_symlinks=False)):
                        stack.append(Path(entry.path))
        if problems:
            raise StateDirError(
                f"state dir {self.root} holds what the orchestrator did not make: "
                + "; ".join(problems)
                + ". Remove those entries (or choose another state_dir) and run again"
            )

    def file(self, path: Path | str) -> Path:
        """A file path inside the root whose folder exists and is checked."""
        target = Path(path) if Path(path).is_absolute() else self.root / path
        self.folder(target.parent)
        return target


def _make_private_dir(path: Path) -> None:
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        _check_private_dir(path, what="state folder")
        return
    except OSError as exc:
        raise StateDirError(f"cannot create {path}: {exc.strerror}") from None
    os.chmod(path, PRIVATE_DIR_MODE)  # ours: safe to tighten past the umask


def _check_private_dir(path: Path, *, what: str) -> None:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise StateDirError(f"{what} {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise StateDirError(f"{what} {path} is a symbolic link: refusing to follow it")
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"{what} {path} is not a folder")
    if info.st_uid != os.geteuid():
        raise StateDirError(f"{what} {path} belongs to uid {info.st_uid}, not to you")
    if info.st_mode & 0o022:
        raise StateDirError(
            f"{what} {path} is writable by others (mode {stat.S_IMODE(info.st_mode):o}): "
            "choose a folder of your own for state_dir"
        )


def open_private(path: Path, flags: int) -> int:
    """Open an owner-only file without following a link at its place (created 0600)."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_CREAT, PRIVATE_FILE_MODE)
    except OSError as exc:
        if os.path.islink(path):
            raise StateDirError(f"{path} is a symbolic link: refusing to follow it") from None
        raise StateDirError(f"cannot open {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise StateDirError(f"{path} is not a regular file of yours")
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def append_private(path: Path, data: str) -> None:
    """Append `data` to an owner-only file in one write call (lines never interleave)."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def touch_private(path: Path) -> None:
    """Create an empty owner-only file if missing (never through a link)."""
    os.close(open_private(path, os.O_WRONLY))


def read_private(path: Path) -> str:
    """Read one of our own files without following a link at its place."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode()


def write_private(path: Path, data: str | bytes) -> None:
    """Atomically replace `path` with `data`, owner-only (the folder must be checked already).

    The rename replaces whatever is at `path`, a link included, and never writes through it.
    """
    write_atomic(path, data, mode=PRIVATE_FILE_MODE)


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
    """Replace `path` atomically (temp file in the same folder + rename).

    Keeps the existing file's permission bits unless `mode` is given, so rewriting a user's story
    file does not change its mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_in_tree(root: Path, path: Path, data: str) -> list[Path]:
    """Create `path` (inside `root`, e.g. a project) without following any link on the way.

    For the few files an agent CLI only reads from its working directory: every folder between
    `root` and the file must be a real folder (made when missing), and the file must be new.
    Returns the folders it made, so they can go again with the file.
    """
    try:
        relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        raise StateDirError(f"{path} is outside {root}") from None
    current = Path(os.path.abspath(root))
    made: list[Path] = []
    for part in relative.parts[:-1]:
        current = current / part
        if os.path.islink(current):
            raise StateDirError(f"{current} is a symbolic link: refusing to write through it")
        if not current.exists():
            os.mkdir(current)
            made.append(current)
    target = current / relative.name
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
    return made


def _umask() -> int:
    # /proc tells without changing it; os.umask() would, for a moment, for every thread.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o077)
    os.umask(current)
    return current


# The user's own folder of ours, outside any project (a redaction key, Gemini's settings files).
USER_STATE = Path(".local") / "state" / "bmad-orchestrator"


def user_state_folder(*parts: str) -> Path:
    """`~/.local/state/bmad-orchestrator/<parts>`, made owner-only where we make it (OSError
    when it cannot be)."""
    folder = Path.home() / USER_STATE
    folder.parent.mkdir(parents=True, exist_ok=True)
    for path in (folder, *(folder.joinpath(*parts[: i + 1]) for i in range(len(parts)))):
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    return folder.joinpath(*parts)
