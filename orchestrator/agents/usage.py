"""What an agent session used: tokens by kind and model, and dollars when they can be known.

Every CLI records usage its own way (a transcript, a rollout file, an event log); each profile
reads its own and hands back `ModelTokens` per model. Dollars come from the CLI when it reports
them, else from the price table; a model without a price leaves the dollars `None` (unknown),
never 0. An attempt whose usage could not be read has no `Usage` at all, and totals count it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, Field

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass
class ModelTokens:
    """Tokens one model used: input (not from cache), output, cache reads and cache writes."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def add(self, other: ModelTokens) -> None:
        """Add `other`'s counts to these."""
        self.input += other.input
        self.output += other.output
        self.cache_read += other.cache_read
        self.cache_write += other.cache_write

    @property
    def total(self) -> int:
        """All four kinds together."""
        return self.input + self.output + self.cache_read + self.cache_write


class Usage(BaseModel):
    """One attempt's usage. `usd` is None when no price was known for a model it used."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    usd: float | None = None
    models: list[str] = Field(default_factory=list)
    source: str = ""  # where it was read, e.g. the transcript's path

    @property
    def tokens(self) -> int:
        """All tokens, every kind counted (what a `tokens` budget limits)."""
        return self.input + self.output + self.cache_read + self.cache_write

    @classmethod
    def of(cls, per_model: Mapping[str, ModelTokens], *, usd: float | None, source: str) -> Usage:
        """Totals across models."""
        total = ModelTokens()
        for tokens in per_model.values():
            total.add(tokens)
        return cls(
            input=total.input,
            output=total.output,
            cache_read=total.cache_read,
            cache_write=total.cache_write,
            usd=None if usd is None else round(usd, 6),
            models=sorted(per_model),
            source=source,
        )


class UsageTotal(BaseModel):
    """Usage summed over attempts; says how many attempts' usage or price is unknown."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    usd: float = 0.0  # of the priced attempts only
    attempts: int = 0
    unknown: int = 0  # attempts whose usage could not be read
    unpriced: int = 0  # attempts whose usage was read but could not be priced

    @property
    def tokens(self) -> int:
        """All tokens of the attempts whose usage is known."""
        return self.input + self.output + self.cache_read + self.cache_write

    @classmethod
    def of(cls, usages: Iterable[Usage | None]) -> UsageTotal:
        """The total of these attempts' usage (None: an attempt whose usage is unknown)."""
        total = cls()
        for usage in usages:
            total.attempts += 1
            if usage is None:
                total.unknown += 1
                continue
            total.input += usage.input
            total.output += usage.output
            total.cache_read += usage.cache_read
            total.cache_write += usage.cache_write
            if usage.usd is None:
                total.unpriced += 1
            else:
                total.usd = round(total.usd + usage.usd, 6)
        return total

    def plus(self, other: UsageTotal) -> UsageTotal:
        """Both totals together."""
        return UsageTotal(
            **{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields}
        )

    def describe(self) -> str:
        """`1.2M tok $3.41`, with `?` where some attempts are unknown or unpriced."""
        if self.attempts == 0:
            return ""
        if self.unknown == self.attempts:
            return "unknown"
        text = f"{_short(self.tokens)} tok"
        if self.unpriced + self.unknown < self.attempts or self.usd:
            text += f" ${self.usd:.2f}"
        if self.unknown or self.unpriced:
            text += f" (+{self.unknown + self.unpriced} unknown)"
        return text


def _short(count: int) -> str:
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if count >= size:
            return f"{count / size:.1f}{suffix}"
    return str(count)


class RunLedger:
    """What a whole run has used: finished attempts, plus live sessions where readable.

    Shared by every story of a run (thread-safe), so a run budget is checked against all of
    them before a stage starts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._finished: list[Usage | None] = []
        self._live: dict[str, Callable[[], Usage | None]] = {}

    def add(self, usage: Usage | None) -> None:
        """A finished attempt's usage (None: unknown)."""
        with self._lock:
            self._finished.append(usage)

    def track(self, key: str, read: Callable[[], Usage | None]) -> None:
        """A running session whose usage so far `read` returns (reading may fail: unknown)."""
        with self._lock:
            self._live[key] = read

    def untrack(self, key: str) -> None:
        """The session ended (its final usage comes through `add`)."""
        with self._lock:
            self._live.pop(key, None)

    def total(self) -> UsageTotal:
        """Finished attempts plus what the running ones report now (blocking: reads files)."""
        with self._lock:
            finished = list(self._finished)
            readers = list(self._live.values())
        live: list[Usage | None] = []
        for read in readers:
            try:
                live.append(read())
            except Exception:  # a half-written record is "not known yet", never fatal
                live.append(None)
        known = UsageTotal.of(finished)
        running = UsageTotal.of(u for u in live if u is not None)
        return known.plus(running.model_copy(update={"attempts": 0}))
