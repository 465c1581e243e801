"""The terminal the run was started from."""

from __future__ import annotations

import contextlib
import os


def detach_from_terminal() -> None:
    """The terminal is gone: writes to it would fail, so standard streams go to /dev/null."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                os.dup2(devnull, fd)
    os.close(devnull)
