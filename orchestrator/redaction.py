"""URLs as they may be shown: a webhook's path or query, a database URL's password, can be
secrets, so messages, logs, reports and run records carry only this form."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit


def redact_url(url: str) -> str:
    """A URL as it may be shown: scheme and host only (and a short digest to tell URLs apart)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{host}{port}/…#{digest}"
