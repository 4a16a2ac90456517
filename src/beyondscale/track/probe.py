"""Is a tracking server reachable? One TCP connection with a short timeout, before any work starts."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from beyondscale.errors import UserError

TIMEOUT_S = 3.0


def check_reachable(flag: str, url: str) -> None:
    """An http(s) URL whose host does not accept a connection within TIMEOUT_S is one line."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=TIMEOUT_S):
            pass
    except OSError as err:
        raise UserError(f"{flag}={url}: cannot reach {parsed.hostname}:{port} ({err.strerror or err})") from None
