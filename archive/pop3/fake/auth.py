"""Authentication for the fake POP3 server: SASL over AUTH (RFC 5034) and APOP (RFC 1939 §7).

Mechanisms, each usable only when the server's ``SASL`` capability lists it:

- PLAIN (RFC 4616): ``[authzid] NUL authcid NUL password``; an authzid other than the user
  itself (a proxy login) is refused.
- LOGIN (draft-murchison-sasl-login): the server asks ``+ VXNlcm5hbWU6`` ("Username:") and
  ``+ UGFzc3dvcmQ6`` ("Password:"); ``AUTH LOGIN <base64 user>`` skips the first question.
- XOAUTH2 (Google's and Microsoft's): ``user=U ^A auth=Bearer T ^A ^A``.
- OAUTHBEARER (RFC 7628 §3.1): ``n,a=U, ^A auth=Bearer T ^A ^A``. Without ``a=`` the token
  itself names the user: it must be the ``oauth_token`` of some mailbox.

A wrong token is answered as Gmail does (RFC 7628 §3.2.2): a ``+`` challenge carrying a base64
JSON error, to which the client must send one more line (any), and only then ``-ERR [AUTH]``.
A malformed payload (bad base64, missing ``^A^A``, no Bearer token) gets ``-ERR [AUTH]`` at once.
A ``*`` line at any challenge cancels the exchange (RFC 5034 §4). A response line may be up
to 64 KiB; an initial response on the AUTH line is bound by its 255 octets (RFC 2449 §4).

Private to `archive.pop3.fake.server`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from archive.pop3.fake.wire import AUTH_FAILED

if TYPE_CHECKING:
    from archive.pop3.fake.server import FakeMailbox

MECHANISMS: Final = frozenset({"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"})
OAUTH_MECHANISMS: Final = frozenset({"XOAUTH2", "OAUTHBEARER"})
USERNAME_CHALLENGE: Final = base64.b64encode(b"Username:").decode()
PASSWORD_CHALLENGE: Final = base64.b64encode(b"Password:").decode()
OAUTH_ERROR_CHALLENGE: Final = base64.b64encode(
    json.dumps(
        {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"},
        separators=(",", ":"),
    ).encode()
).decode()
CANCELLED: Final = "-ERR Authentication cancelled"

# Sends "+ <challenge>" and returns the client's answer line; raises SaslCancelled on "*".
Challenge = Callable[[str], str]


class SaslCancelled(Exception):
    """The client answered a challenge with ``*`` (RFC 5034 §4)."""


@dataclass(frozen=True)
class SaslOutcome:
    """The end of one AUTH exchange: ``user`` is logged in if ``error`` is None."""

    user: str
    error: str | None
    log_line: str


def authenticate(
    mechanism: str,
    initial: str | None,
    challenge: Challenge,
    mailboxes: Mapping[str, FakeMailbox],
) -> SaslOutcome:
    """Run the exchange for a supported ``mechanism``; ``initial`` is the AUTH line's response."""
    if initial == "=":
        initial = ""  # RFC 5034 §4: "=" is an empty initial response
    user = ""
    try:
        if mechanism == "LOGIN":
            user = _b64_text(initial if initial is not None else challenge(USERNAME_CHALLENGE))
            password = _b64_text(challenge(PASSWORD_CHALLENGE))
            return _password_outcome(mechanism, user, password, mailboxes)
        response = initial if initial is not None else challenge("")
        if mechanism == "PLAIN":
            credentials = decode_plain(response)
            if credentials is None:
                return SaslOutcome("", AUTH_FAILED, "AUTH PLAIN ***")
            return _password_outcome(mechanism, *credentials, mailboxes)
        decoded = decode_oauth(mechanism, response)
        if decoded is None:
            return SaslOutcome("", AUTH_FAILED, f"AUTH {mechanism} ***")
        user, token = decoded
        if not user:
            user = next((k for k, b in mailboxes.items() if _token_ok(b, token)), "")
        box = mailboxes.get(user)
        if box is None or not _token_ok(box, token):
            # RFC 7628 §3.2.2: the error comes as a challenge the client must answer first.
            challenge(OAUTH_ERROR_CHALLENGE)
            return SaslOutcome(user, AUTH_FAILED, f"AUTH {mechanism} ***")
        return SaslOutcome(user, None, f"AUTH {mechanism} ***")
    except SaslCancelled:
        return SaslOutcome(user, CANCELLED, f"AUTH {mechanism}")


def password_ok(box: FakeMailbox | None, password: str) -> bool:
    if box is None:
        return False
    secret = password.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(secret, box.password.encode())


def apop_ok(box: FakeMailbox | None, timestamp: str, digest: str) -> bool:
    """RFC 1939 §7: the digest is MD5(timestamp + password) in lowercase hex."""
    if box is None:
        return False
    expected = hashlib.md5((timestamp + box.password).encode(), usedforsecurity=False)
    return hmac.compare_digest(expected.hexdigest().encode(), digest.lower().encode())


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


def decode_oauth(mechanism: str, response: str) -> tuple[str, str] | None:
    """(user, token) from an XOAUTH2 or OAUTHBEARER response, or None if malformed.

    The user is "" for an OAUTHBEARER response without ``a=``.
    """
    try:
        parts = _b64_text(response, strict=True).split("\x01")
    except ValueError:
        return None
    if len(parts) < 3 or parts[-2:] != ["", ""]:
        return None
    user = ""
    if mechanism == "OAUTHBEARER":
        # RFC 5801 gs2-header: cb-flag "," [ "a=" saslname ] ","
        flag, _, rest = parts.pop(0).partition(",")
        authzid, comma, tail = rest.partition(",")
        if flag not in ("n", "y") or not comma or tail or authzid[:2] not in ("", "a="):
            return None
        user = authzid[2:].replace("=2C", ",").replace("=3D", "=")
    pairs = dict(part.partition("=")[::2] for part in parts[:-2])
    if mechanism == "XOAUTH2":
        user = pairs.get("user", "")
        if not user:
            return None
    scheme, _, token = pairs.get("auth", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return user, token


def _password_outcome(
    mechanism: str, user: str, password: str, mailboxes: Mapping[str, FakeMailbox]
) -> SaslOutcome:
    ok = bool(user) and password_ok(mailboxes.get(user), password)
    return SaslOutcome(user, None if ok else AUTH_FAILED, f"AUTH {mechanism} ***")


def _token_ok(box: FakeMailbox, token: str) -> bool:
    expected = box.oauth_token
    return expected is not None and hmac.compare_digest(expected.encode(), token.encode())


def _b64_text(data: str, *, strict: bool = False) -> str:
    """Decoded base64 text; "" for malformed input unless ``strict`` (then ValueError)."""
    try:
        return base64.b64decode(data.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):
        if strict:
            raise
        return ""
