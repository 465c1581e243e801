"""What a Postgres URL in epic.yaml (or in the variable it names) may be: one that libpq and our
redaction read alike, so a typo is refused at load with a message that quotes no password.

libpq takes the user name and password up to the first '@', Python's `urlsplit` (behind
`redact_url`) up to the last '@' before the first '/', '?' or '#'; a raw '@', '/', '?' or '#' in
a password makes them disagree, and libpq's own errors then quote pieces of it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from orchestrator.app.ids import CONTROL

POSTGRES_SCHEMES = ("postgres", "postgresql")
EXPECTED = "expected `sqlite`, a postgresql:// URL, or $VARIABLE holding one"
ENCODE = (
    "percent-encode '@', '/', '?', '#' and '%' in the user name and password "
    "(%40, %2F, %3F, %23, %25)"
)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_SHOWN = 40  # characters of a host or port quoted in a message


def is_postgres_url(text: str) -> bool:
    """Whether `text` claims to be a Postgres URL (its scheme), well-formed or not."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme in POSTGRES_SCHEMES


def check_postgres_url(url: str) -> str:
    """`url` as it is, or ValueError saying what to fix without quoting the user or password."""
    if not is_postgres_url(url):
        raise ValueError(EXPECTED)
    if CONTROL.search(url):
        raise ValueError("the URL holds a control character (a newline, a tab...)")
    if _BAD_PERCENT.search(url):
        raise ValueError(f"a '%' is not followed by two hex digits: {ENCODE}")
    rest = url.partition("://")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if rest.count("@") > 1:
        raise ValueError(f"the URL holds more than one '@': {ENCODE}")
    if "@" in rest and "@" not in authority:
        raise ValueError(f"the user name or password holds a raw '/', '?' or '#': {ENCODE}")
    if "#" in rest:
        raise ValueError("the URL holds a '#' (libpq URLs have no fragment): write it as %23")
    hosts = authority.rpartition("@")[2]
    for host in hosts.split(","):
        _check_host(host)
    try:
        _ = urlsplit(url).port  # what `redact_url` reads to show the URL
    except ValueError:
        if "," in hosts:
            raise ValueError("several hosts with ports: name one host:port") from None
        raise ValueError("the host holds characters a URL may not (write it in ASCII)") from None
    return url


def _check_host(host: str) -> None:
    """One `host[:port]` (or `[IPv6][:port]`) of the URL's host list; ValueError if malformed."""
    if host.startswith("["):
        inside, closed, after = host[1:].partition("]")
        if not closed:
            raise ValueError("the host's '[' has no closing ']' (an IPv6 host is written [::1])")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise ValueError(f"[{inside[:_SHOWN]}] is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise ValueError("text after the host's ']' (a port is written [::1]:5432)")
        port = after[1:]
    else:
        if "[" in host or "]" in host:
            raise ValueError("a '[' or ']' outside an IPv6 host (written [::1])")
        port = host.partition(":")[2]
    if port and not (
        port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536
    ):
        raise ValueError(f"port {port[:_SHOWN]!r} is not a number from 1 to 65535")
