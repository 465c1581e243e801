"""Dollars from tokens: a dated price table, overridable in epic.yaml (`pricing:`).

Most CLIs record tokens, not dollars. Prices are USD per million tokens, matched by model id
give or take a release date, after a provider prefix (`anthropic/`, `us.anthropic.`), a
version suffix (`-v1:0`) or Claude Code's `[1m]` are taken off. A model with no price leaves
an attempt's dollars unknown, never 0. Long-context tiers (a request over 200K input tokens
billed at a higher rate) are not modelled: such requests come out cheaper than billed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.agents.usage import ModelTokens, Usage

PRICES_AS_OF = "2026-11-22"


class ModelPrice(BaseModel):
    """USD per million tokens of each kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(default=0.0, ge=0)
    cache_write: float = Field(default=0.0, ge=0)


def _price(inp: float, out: float, read: float, write: float = 0.0) -> ModelPrice:
    return ModelPrice(input=inp, output=out, cache_read=read, cache_write=write)


# Anthropic: platform.claude.com/docs/en/about-claude/pricing (cache write = the 5-minute
# write). OpenAI: developers.openai.com/api/docs/models/* (input includes cached input, which
# readers split out). Google: third-party tables only (models.dev, 2026-07), as no vendor
# page was at hand; override them if they matter to you.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-opus-4": _price(15, 75, 1.50, 18.75),
    "claude-opus-4-1": _price(15, 75, 1.50, 18.75),
    "claude-opus-4-5": _price(5, 25, 0.50, 6.25),
    "claude-opus-4-6": _price(5, 25, 0.50, 6.25),
    "claude-opus-4-7": _price(5, 25, 0.50, 6.25),
    "claude-opus-4-8": _price(5, 25, 0.50, 6.25),
    "claude-opus-5": _price(5, 25, 0.50, 6.25),
    "claude-opus-5-5": _price(4, 20, 0.20, 5.00),
    "claude-sonnet-4": _price(3, 15, 0.30, 3.75),
    "claude-sonnet-4-5": _price(3, 15, 0.30, 3.75),
    "claude-sonnet-4-6": _price(3, 15, 0.30, 3.75),
    "claude-sonnet-5": _price(2, 10, 0.20, 2.50),
    "claude-sonnet-5-5": _price(2, 10, 0.20, 2.50),
    "claude-haiku-4-5": _price(1, 5, 0.10, 1.25),
    "claude-haiku-5-5": _price(0.10, 0.50, 0.01, 0.125),
    "gpt-5": _price(1.25, 10, 0.125),
    "gpt-5-codex": _price(1.25, 10, 0.125),
    "gpt-5.6-sol": _price(5, 30, 0.40, 5.00),
    "gpt-5.6-terra": _price(2, 12, 0.20, 2.50),
    "gpt-6.2-sol": _price(2, 10, 0.10, 2.50),
    "gemini-2.5-pro": _price(1.25, 10, 0.125),
    "gemini-2.5-flash": _price(0.30, 2.50, 0.03),
    "gemini-3-flash-preview": _price(0.50, 3, 0.05),
    "gemini-3.1-pro-preview": _price(2, 12, 0.20),
}

_PROVIDER = re.compile(r"^(?:[a-z]+/|(?:[a-z]{2}\.)?anthropic\.)")
_SUFFIX = re.compile(r"(?:\[1m\]|-v\d+:\d+)$")
# What may follow a priced id: nothing, a release date, or a version tag. Anything else is
# another model (`claude-opus-4-9` is not `claude-opus-4`): unknown rather than mispriced.
_RELEASE = re.compile(r"(?:-\d{8}|-\d{4}-\d{2}-\d{2}|[@:].*)?")


def normalise(model: str) -> str:
    """The model id as the price table spells it."""
    return _SUFFIX.sub("", _PROVIDER.sub("", model.strip().lower()))


def price_of(model: str, table: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of the table's id that `model` is (give or take a release date), if any."""
    name = normalise(model)
    for prefix in sorted(table, key=len, reverse=True):
        key = prefix.lower()
        if name.startswith(key) and _RELEASE.fullmatch(name[len(key) :]):
            return table[prefix]
    return None


def dollars(per_model: Mapping[str, ModelTokens], table: Mapping[str, ModelPrice]) -> float | None:
    """What these tokens cost, or None when a model with tokens has no price."""
    total = 0.0
    for model, tokens in per_model.items():
        if tokens.total == 0:
            continue
        price = price_of(model, table)
        if price is None:
            return None
        total += (
            tokens.input * price.input
            + tokens.output * price.output
            + tokens.cache_read * price.cache_read
            + tokens.cache_write * price.cache_write
        ) / 1_000_000
    return total


def priced(
    per_model: Mapping[str, ModelTokens],
    reported_usd: float | None,
    table: Mapping[str, ModelPrice],
    *,
    source: str,
) -> Usage:
    """One attempt's `Usage`: the CLI's own dollars when it reports them, else the table's."""
    usd = reported_usd if reported_usd is not None else dollars(per_model, table)
    return Usage.of(per_model, usd=usd, source=source)


def price_table(overrides: Mapping[str, ModelPrice]) -> dict[str, ModelPrice]:
    """The shipped table with the user's prices over it."""
    return {**DEFAULT_PRICES, **overrides}
