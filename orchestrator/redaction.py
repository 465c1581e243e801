"""URLs as they may be shown: a webhook's path or query, a database URL's password, can be
secrets, so messages, logs, reports and run records carry only this form.

The short digest that tells two URLs apart is keyed with a secret of this user's (created
owner-only on first use), so a shown digest is no oracle: nobody can test guessed passwords
against it without the key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from urllib.parse import urlsplit

from orchestrator.files import user_state_folder

KEY_NAME = "redaction.key"


def redact_url(url: str) -> str:
    """A URL as it may be shown: scheme and host only (and a keyed digest to tell URLs apart)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    digest = hmac.new(_key(), url.encode(), hashlib.sha256).hexdigest()[:8]
    return f"{parts.scheme}://{host}{port}/…#{digest}"


@functools.cache
def _key() -> bytes:
    """This user's redaction key; a key of this process's own when none can be kept (digests
    then differ between runs, so an unchanged URL may be reported as changed: never the reverse).
    """
    try:
        path = user_state_folder() / KEY_NAME
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            fd = -1
        if fd >= 0:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            key = handle.read(64)
        if info.st_uid == os.geteuid() and not info.st_mode & 0o077 and len(key) == 32:
            return key
    except OSError:
        pass
    return secrets.token_bytes(32)
