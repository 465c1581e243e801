"""Small file helpers shared by the runtime.

Everything the orchestrator writes about a run (logs, events, checkpoints, reports) may contain
prompts and repository details, so it is created owner-only. Files that agents and users share
(story files, gates) are rewritten atomically so a watcher never reads half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create `path` and its missing parents as 0700; tighten `path` if it already exists."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR_MODE)
    with contextlib.suppress(PermissionError):
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def open_private_append(path: Path) -> int:
    """Open `path` for appending as a 0600 file descriptor (created if missing)."""
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def append_private(path: Path, data: str) -> None:
    """Append `data` to an owner-only file in one write call (lines never interleave)."""
    fd = open_private_append(path)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def write_private(path: Path, data: str) -> None:
    """Atomically replace `path` with `data`, owner-only."""
    write_atomic(path, data, mode=PRIVATE_FILE_MODE, private_dir=True)


def write_atomic(
    path: Path, data: str | bytes, *, mode: int | None = None, private_dir: bool = False
) -> None:
    """Replace `path` atomically (temp file in the same folder + rename).

    Keeps the existing file's permission bits unless `mode` is given, so rewriting a user's story
    file does not change its mode.
    """
    if private_dir:
        ensure_private_dir(path.parent)
    else:
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


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
