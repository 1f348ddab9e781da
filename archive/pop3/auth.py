"""POP3 authentication: USER/PASS, APOP and SASL (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER).

SASL follows RFC 5034: ``AUTH mech [initial-response]``; the server answers ``+ base64``
challenges until ``+OK`` or ``-ERR``. The command line is limited to 255 octets (RFC 2449 §4),
so a long initial response (OAuth tokens run to kilobytes) is sent in the two-step form: an
empty ``AUTH mech``, the server's ``+``, then the response on its own line. Microsoft 365
requires the two-step form for XOAUTH2 anyway.

A ``+`` challenge *after* our credentials is a failure, never a success: poplib's
``_getresp`` mistakes it for one. For OAuth the challenge carries a JSON error (RFC 7628
§3.2.2); we answer it as the mechanism requires, then read the final ``-ERR``.

Credentials never reach a log line or an exception: every line carrying one is sent with
``redact=True``, and errors quote only the server's status text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import NoReturn, Protocol

from archive.errors import Pop3AuthError
from archive.pop3.wire import MAX_COMMAND

_APOP_BANNER = re.compile(rb"<[^<>\s]+@[^<>\s]+>")


class Channel(Protocol):
    """What authentication needs from a session: send a line, read a status line."""

    def send(self, line: str, *, redact: bool = False) -> None: ...

    def status(self, context: str) -> bytes: ...

    def fail(self, command: str, status: bytes) -> NoReturn:
        """Raise the error class that the status line's response code calls for."""
        ...

    def describe(self) -> str: ...


def check_argument(value: str, what: str) -> None:
    """RFC 1939 §3: arguments are single tokens; CR, LF or NUL would inject a command."""
    if "\r" in value or "\n" in value or "\0" in value:
        raise Pop3AuthError(f"{what} contains CR, LF or NUL; refusing to send it")


def b64(data: str) -> str:
    return base64.b64encode(data.encode("utf-8")).decode("ascii")


def user_pass(channel: Channel, username: str, password: str) -> None:
    channel.send(f"USER {username}")
    _expect_ok(channel, "USER")
    channel.send(f"PASS {password}", redact=True)
    _expect_ok(channel, "PASS")


def apop(channel: Channel, greeting: bytes, username: str, password: str) -> None:
    """RFC 1939 §7: MD5 over the greeting's timestamp and the secret. Only on request."""
    banner = _APOP_BANNER.search(greeting)
    if banner is None:
        raise Pop3AuthError(f"{channel.describe()}: server greeting offers no APOP timestamp")
    digest = hashlib.md5(
        banner.group(0) + password.encode("utf-8"), usedforsecurity=False
    ).hexdigest()
    channel.send(f"APOP {username} {digest}", redact=True)
    _expect_ok(channel, "APOP")


def sasl_plain(channel: Channel, username: str, password: str) -> None:
    _sasl(channel, "PLAIN", [b64(f"\0{username}\0{password}")])


def sasl_login(channel: Channel, username: str, password: str) -> None:
    # draft-murchison-sasl-login: the server prompts "Username:" then "Password:".
    _sasl(channel, "LOGIN", [b64(username), b64(password)], initial=False)


def xoauth2(channel: Channel, username: str, token: str) -> None:
    """Google's and Microsoft's XOAUTH2: a failed token gets a JSON challenge; answer empty."""
    payload = b64(f"user={username}\x01auth=Bearer {token}\x01\x01")
    # Always two-step: Microsoft 365 refuses the initial response, and tokens rarely fit.
    _sasl(channel, "XOAUTH2", [payload], initial=False, error_reply="")


def oauthbearer(channel: Channel, username: str, token: str) -> None:
    """RFC 7628 §3.1: gs2 header with the authzid; the error reply is a lone %x01 (§3.2.3)."""
    if "," in username or "=" in username:
        # RFC 5801 §4: ',' and '=' in the authzid must be escaped as =2C and =3D.
        username = username.replace("=", "=3D").replace(",", "=2C")
    payload = b64(f"n,a={username},\x01auth=Bearer {token}\x01\x01")
    _sasl(channel, "OAUTHBEARER", [payload], error_reply=b64("\x01"))


def _sasl(
    channel: Channel,
    mechanism: str,
    responses: list[str],
    *,
    initial: bool = True,
    error_reply: str | None = None,
) -> None:
    pending = list(responses)
    first = pending[0]
    command = f"AUTH {mechanism}"
    if initial and len(command) + 1 + len(first) + 2 <= MAX_COMMAND:
        channel.send(f"{command} {first}", redact=True)
        pending.pop(0)
    else:
        channel.send(command)
    while True:
        status = channel.status("AUTH")
        if status.startswith(b"+OK"):
            if pending:
                raise Pop3AuthError(
                    f"{channel.describe()}: AUTH {mechanism} accepted before all credentials"
                )
            return
        if not status.startswith(b"+"):
            channel.fail(f"AUTH {mechanism}", status)
        if pending:
            channel.send(pending.pop(0), redact=True)
            continue
        # A challenge after the last credential: the server refused them (RFC 7628 §3.2.2).
        reason = _oauth_error(status)
        channel.send(error_reply if error_reply is not None else "*")
        final = channel.status("AUTH")
        detail = f": {reason}" if reason else ""
        if final.startswith(b"+OK"):
            raise Pop3AuthError(
                f"{channel.describe()}: AUTH {mechanism} ended ambiguously after an error "
                f"challenge{detail}"
            )
        raise Pop3AuthError(f"{channel.describe()}: AUTH {mechanism} refused{detail}")


def _oauth_error(status: bytes) -> str:
    """The status and scope from an OAuth error challenge; never the token."""
    try:
        data = json.loads(base64.b64decode(status[1:].strip(), validate=True))
    except (binascii.Error, ValueError):
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [f"{key} {data[key]}" for key in ("status", "scope") if isinstance(data.get(key), str)]
    return ", ".join(parts)


def _expect_ok(channel: Channel, command: str) -> None:
    status = channel.status(command)
    if not status.startswith(b"+OK"):
        channel.fail(command, status)
