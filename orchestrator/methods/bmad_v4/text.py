"""Reading files the way agents write them: BOMs, emoji, accents and coarse file clocks."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path


def read_text(path: Path) -> str:
    """A text file as written: a UTF-8 BOM is dropped, line endings are kept as they are."""
    return path.read_bytes().decode("utf-8-sig")


def digest(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def mtime_ns(path: Path) -> int:
    """The file's mtime in nanoseconds, 0 when it does not exist."""
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def fold(value: str) -> str:
    """Lower case, accents and everything but letters and digits removed: a synonym key."""
    decomposed = unicodedata.normalize("NFKD", value.lower())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def strip_symbols(value: str) -> str:
    """Emoji, check marks and other pictographs removed (✅ Done, Done ✓, 🚧 WIP)."""
    return "".join(
        ch
        for ch in value
        if ch.isascii()
        or (unicodedata.category(ch) not in ("So", "Sk", "Cs", "Co") and ch not in "\ufe0f\u200d")
    )
