"""The terminal: the one the run was started from, and what may be printed on it."""

from __future__ import annotations

import contextlib
import os
import re


def detach_from_terminal() -> None:
    """The terminal is gone: writes to it would fail, so standard streams go to /dev/null."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                os.dup2(devnull, fd)
    os.close(devnull)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """`text` safe to print on a terminal: every control character but newline and tab shown
    as `\\xNN`, so a repository's file cannot clear the screen or write the clipboard (OSC 52)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
