"""Pane output into a log file with a size cap: `python -I -S logcap.py LOG MAX_BYTES`.

tmux's `pipe-pane` feeds this program the pane's output. An agent that floods its terminal must
not fill the disk, so once the log passes MAX_BYTES it is rewritten to its last half, headed by a
line that says how much was cut; the tail (what failed, the last screen) is what a person reads.
Standard library only and run without `site`, so it starts in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import sys

CHUNK = 1 << 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)


def _keep_tail(path: str, fd: int, size: int, keep: int, cut_so_far: int) -> tuple[int, int, int]:
    """Rewrite the log as a marker plus its last `keep` bytes; returns (fd, size, cut)."""
    cut = cut_so_far + size - keep
    marker = f"[bmad-orchestrator: {cut} bytes of earlier output cut; the log keeps its tail]\n"
    scratch = f"{path}.cut"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(scratch)
    out = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    source = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        os.write(out, marker.encode())
        offset = size - keep
        while offset < size:
            data = os.pread(source, min(CHUNK, size - offset), offset)
            if not data:
                break
            os.write(out, data)
            offset += len(data)
    finally:
        os.close(source)
        os.close(out)
    os.replace(scratch, path)
    os.close(fd)
    fd = _open(path)
    return fd, os.fstat(fd).st_size, cut


def main(argv: list[str]) -> int:
    """Copy standard input into the log, capped; returns the exit code."""
    path, max_bytes = argv[0], max(1024, int(argv[1]))
    fd = _open(path)
    size, cut = os.fstat(fd).st_size, 0
    while True:
        try:
            data = os.read(0, CHUNK)
        except InterruptedError:
            continue
        if not data:
            return 0
        os.write(fd, data)
        size += len(data)
        if size > max_bytes:
            fd, size, cut = _keep_tail(path, fd, size, max_bytes // 2, cut)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
