"""Durations and sizes as people write them in epic.yaml (`90s`, `10m`, `64MiB`)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.I)
_SIZE_UNITS = {
    **{"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9},
    **{"kib": 2**10, "mib": 2**20, "gib": 2**30},
}


def parse_duration(value: Any) -> Any:
    """Seconds as a number, or a string such as `90s`, `10m`, `1.5h`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 600, 90s or 10m")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration such as 600, 90s or 10m, got {value!r}")


def parse_size(value: Any) -> Any:
    """Bytes as a number, or a string such as `500KB`, `64MiB`, `1GB`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64MB")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match.group(2) or "B").lower()
        return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size such as 1048576, 500KB or 64MiB, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
QuietTime = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(ge=1024)]
