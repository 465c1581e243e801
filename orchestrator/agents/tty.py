"""An agent TUI's input line: a raw terminal and bracketed paste, as Claude Code reads input.

Typed delivery is tested against this: a paste arrives between `ESC[200~` and `ESC[201~` (its
newlines do not submit), a lone Enter submits, keys named by escape sequences are ignored.
"""

from __future__ import annotations

import contextlib
import os
import re
import termios
from collections.abc import Iterator

PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
BRACKETED_PASTE_ON = "\x1b[?2004h"


@contextlib.contextmanager
def raw_terminal(fd: int = 0) -> Iterator[None]:
    """Raw-ish input: no echo, no line buffering, CR kept apart from a pasted LF."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    raw = termios.tcgetattr(fd)
    raw[0] &= ~(termios.ICRNL | termios.IXON)
    raw[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(fd, termios.TCSANOW, raw)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


class InputLine:
    """Bytes from the terminal in, submitted messages out (`feed` returns them)."""

    def __init__(self, *, swallow_enters: int = 0) -> None:
        self.composing = bytearray()
        self._pending = b""
        self._in_paste = False
        self._swallow = swallow_enters  # Enters to ignore, as a busy TUI loses them

    def feed(self, chunk: bytes) -> list[str]:
        """Take what the terminal sent; return each message an Enter submitted."""
        submitted: list[str] = []
        pending = self._pending + chunk
        while pending:
            if self._in_paste:
                end = pending.find(PASTE_END)
                if end < 0:
                    keep = len(PASTE_END) - 1
                    self.composing += pending[:-keep] if len(pending) > keep else b""
                    pending = pending[-keep:] if len(pending) > keep else pending
                    break
                self.composing += pending[:end]
                pending = pending[end + len(PASTE_END) :]
                self._in_paste = False
                continue
            if pending.startswith(PASTE_START):
                pending = pending[len(PASTE_START) :]
                self._in_paste = True
                continue
            if PASTE_START.startswith(pending) or pending == b"\x1b":
                break  # maybe the start of a marker split across reads
            byte, pending = pending[:1], pending[1:]
            if byte in (b"\r", b"\n"):
                if self._swallow > 0:
                    self._swallow -= 1
                elif self.composing.strip():
                    submitted.append(self.composing.decode(errors="replace"))
                    self.composing.clear()
            elif byte in (b"\x7f", b"\x08"):
                del self.composing[-1:]
            elif byte == b"\x1b":
                match = re.match(rb"\[[0-9;]*[A-Za-z~]", pending)
                pending = pending[match.end() :] if match else pending
            elif byte >= b" " or byte == b"\t":
                self.composing += byte
        self._pending = pending
        return submitted

    def shown(self) -> str:
        """What the input line shows: the last non-empty line being composed."""
        lines = [line for line in self.composing.decode(errors="ignore").split("\n") if line]
        return lines[-1][-150:] if lines else ""
