"""SASL decoding for the fake POP3 server (RFC 5034 AUTH).

Private to `archive.pop3.fakeserver`.
"""

from __future__ import annotations

import base64


def decode_plain(response: str) -> tuple[str, str] | None:
    """(user, password) from a SASL PLAIN response (RFC 4616), or None if malformed."""
    try:
        raw = base64.b64decode(response.encode("ascii"), validate=True)
        authzid, authcid, password = (part.decode("utf-8") for part in raw.split(b"\0"))
    except ValueError:
        return None
    # No proxy logins: an authorization identity must be the user itself.
    if not authcid or authzid not in ("", authcid):
        return None
    return authcid, password
