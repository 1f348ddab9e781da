"""A POP3 client for archiving: verified TLS, streaming, pipelined retrieval.

Why not poplib: it caps lines at 2,048 bytes, returns a message as a list of lines (so the
exact bytes are lost), has no pipelining, and does not verify TLS unless handed a context.

The client keeps every byte a server sends for a message, after dot-unstuffing (RFC 1939 §3),
CRLF included and lines of any length, and hashes it while it arrives. Every socket
operation has a timeout. Credentials never appear in an exception or a log line.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from typing import NoReturn

from archive.errors import (
    ConfigError,
    Pop3AuthError,
    Pop3ConnectionError,
    Pop3ProtocolError,
    Pop3ServerError,
    Pop3TemporaryError,
    Pop3TLSError,
)
from archive.pop3 import auth
from archive.pop3.source import Listed, RetrievedMessage
from archive.pop3.types import AuthMethod, TlsMode
from archive.pop3.wire import (
    Endpoint,
    Wire,
    os_reason,
    response_code,
    server_text,
    wrap_tls,
)

__all__ = ["AuthMethod", "Endpoint", "Listed", "Pop3Client", "RetrievedMessage", "TlsMode"]

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 8 * 1024 * 1024
# RFC 2449 §8 / RFC 3206: response codes after which a later attempt may succeed.
TRANSIENT_CODES = frozenset({"IN-USE", "LOGIN-DELAY", "SYS/TEMP"})
_SASL_MECHANISMS = {
    "plain": "PLAIN",
    "login": "LOGIN",
    "xoauth2": "XOAUTH2",
    "oauthbearer": "OAUTHBEARER",
}

# getaddrinfo(3) codes that say the host name does not exist (EAI_NONAME) or has no address
# (EAI_NODATA, glibc only): asking again gets the same answer, so the mailbox fails without
# retries. EAI_AGAIN ("Temporary failure in name resolution") and the rest stay transient.
_NO_SUCH_HOST = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


class Pop3Client:
    """One POP3 session. Use `Pop3Client.connect(endpoint)` and close it with `quit()`/`close()`."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint) -> None:
        self._wire = Wire(sock, endpoint)
        self.endpoint = endpoint
        self.capabilities: dict[str, list[str]] = {}
        self.greeting = b""

    @classmethod
    def connect(cls, endpoint: Endpoint) -> Pop3Client:
        """Connect, TLS as the endpoint says, read the greeting and CAPA.

        A host name that does not exist raises ConfigError (permanent); any other failure
        to connect Pop3ConnectionError (transient); both `<where>: cannot connect: <reason>`.
        """
        where = endpoint.describe()
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), endpoint.timeout)
        except OSError as exc:
            message = f"{where}: cannot connect: {os_reason(exc)}"
            if isinstance(exc, socket.gaierror) and exc.errno in _NO_SUCH_HOST:
                raise ConfigError(message) from None
            raise Pop3ConnectionError(message) from None
        sock.settimeout(endpoint.timeout)
        try:
            if endpoint.tls == "implicit":
                sock = wrap_tls(sock, endpoint)
            client = cls(sock, endpoint)
            client.greeting = client._expect_ok("greeting")
            client.capabilities = client.capa()
            if endpoint.tls == "starttls":
                client._starttls()
        except BaseException:
            sock.close()
            raise
        return client

    @property
    def pipelining(self) -> bool:
        return self.endpoint.pipelining and "PIPELINING" in self.capabilities

    def capa(self) -> dict[str, list[str]]:
        """RFC 2449 CAPA; an old server that answers -ERR simply has no extensions."""
        self._send("CAPA")
        status = self._status_line("CAPA")
        if not status.startswith(b"+OK"):
            return {}
        caps: dict[str, list[str]] = {}
        for line in self._multiline_lines("CAPA"):
            words = line.decode("ascii", "replace").split()
            if words:
                caps[words[0].upper()] = words[1:]
        return caps

    def _starttls(self) -> None:
        # RFC 2595 §4: STLS must be advertised; never fall back to a plaintext login.
        if "STLS" not in self.capabilities:
            raise Pop3TLSError(f"{self.endpoint.describe()}: server does not offer STLS")
        self._send("STLS")
        self._expect_ok("STLS")
        self._wire.start_tls()
        # RFC 2595 §4: capabilities learned before TLS must be discarded.
        self.capabilities = self.capa()

    def login(self, username: str, secret: str, method: AuthMethod = "auto") -> None:
        """Authenticate; `secret` is the password, or the access token for OAuth methods.

        `auto` prefers SASL PLAIN when offered, else USER/PASS. APOP (MD5, broken) and the
        OAuth mechanisms are used only when asked for by name.
        """
        where = self.endpoint.describe()
        auth.check_argument(username, f"{where}: username")
        auth.check_argument(secret, f"{where}: password")
        offered = {m.upper() for m in self.capabilities.get("SASL", [])}
        if method == "auto":
            method = "plain" if "PLAIN" in offered else "user"
        if method in _SASL_MECHANISMS and _SASL_MECHANISMS[method] not in offered and offered:
            raise Pop3AuthError(
                f"{where}: server does not offer SASL {_SASL_MECHANISMS[method]} "
                f"(offers {', '.join(sorted(offered))})"
            )
        channel = _Channel(self)
        match method:
            case "user":
                auth.user_pass(channel, username, secret)
            case "apop":
                auth.apop(channel, self.greeting, username, secret)
            case "plain":
                auth.sasl_plain(channel, username, secret)
            case "login":
                auth.sasl_login(channel, username, secret)
            case "xoauth2":
                auth.xoauth2(channel, username, secret)
            case "oauthbearer":
                auth.oauthbearer(channel, username, secret)
        # RFC 2449 §5: capabilities may change after authentication (LOGIN-DELAY per user).
        self.capabilities = self.capa() or self.capabilities

    def _raise_login_error(self, command: str, status: bytes) -> NoReturn:
        text = server_text(status)
        code = response_code(status)
        where = self.endpoint.describe()
        if code in TRANSIENT_CODES:
            raise Pop3TemporaryError(f"{where}: login deferred by server: {text}")
        if code == "SYS/PERM":
            raise Pop3ServerError(f"{where}: server refused the session: {text}")
        raise Pop3AuthError(f"{where}: login failed ({command}): {text}")

    @property
    def login_delay(self) -> int | None:
        """RFC 2449 §6.5: seconds to wait between logins, if the server asks for it."""
        values = self.capabilities.get("LOGIN-DELAY", [])
        return int(values[0]) if values and values[0].isdigit() else None

    @property
    def expires_on_retrieval(self) -> bool:
        """RFC 2449 §6.7: `EXPIRE 0` means a retrieved message may be deleted at QUIT."""
        return self.capabilities.get("EXPIRE", [""])[:1] == ["0"]

    def listing(self) -> list[Listed]:
        """UIDL and LIST (pipelined when offered): number, unique id, announced size."""
        if self.pipelining:
            self._send("UIDL")
            self._send("LIST")
        else:
            self._send("UIDL")
        uidls = self._read_uidl()
        if not self.pipelining:
            self._send("LIST")
        sizes = self._read_list()
        return [Listed(number, uidl, sizes.get(number)) for number, uidl in uidls]

    def uidl(self) -> list[tuple[int, bytes]]:
        """Message numbers with their unique ids, as octets (RFC 1939 §7, UIDL)."""
        self._send("UIDL")
        return self._read_uidl()

    def _read_uidl(self) -> list[tuple[int, bytes]]:
        self._expect_ok("UIDL")
        listing: list[tuple[int, bytes]] = []
        for line in self._multiline_lines("UIDL"):
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise Pop3ProtocolError(
                    f"{self.endpoint.describe()}: malformed UIDL line {line[:80]!r}"
                )
            # Octet for octet: servers send ids outside RFC 1939's 0x21-0x7E, and decoding
            # them (with replacement) made two different ids one key.
            listing.append((int(parts[0]), bytes(parts[1])))
        return listing

    def _read_list(self) -> dict[int, int]:
        self._expect_ok("LIST")
        sizes: dict[int, int] = {}
        for line in self._multiline_lines("LIST"):
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                sizes[int(parts[0])] = int(parts[1])
        return sizes

    def retrieve(self, numbers: Sequence[int], window: int = 8) -> Iterator[RetrievedMessage]:
        """RETR each message, in order, streaming it into a spool while hashing it.

        With PIPELINING (RFC 2449 §6.6) up to `window` RETR commands are in flight. The
        window bounds what we send ahead, so our sends can never deadlock against a server
        that is blocked writing responses we have not read yet.
        """
        depth = max(1, window) if self.pipelining else 1
        pending: deque[int] = deque()
        queue = iter(numbers)
        for number in queue:
            self._send(f"RETR {number}")
            pending.append(number)
            if len(pending) >= depth:
                break
        while pending:
            number = pending.popleft()
            message = self._read_message(number)
            next_number = next(queue, None)
            if next_number is not None:
                self._send(f"RETR {next_number}")
                pending.append(next_number)
            yield message

    def _read_message(self, number: int) -> RetrievedMessage:
        status = self._status_line(f"RETR {number}")
        if not status.startswith(b"+OK"):
            raise Pop3ServerError(
                f"{self.endpoint.describe()}: RETR {number} refused: {server_text(status)}"
            )
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in self._wire.multiline_blocks(f"RETR {number}"):
                spool.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if size > self.endpoint.max_response_bytes:
                    raise Pop3ProtocolError(
                        f"{self.endpoint.describe()}: RETR {number} exceeds "
                        f"{self.endpoint.max_response_bytes} bytes; giving up on the session"
                    )
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return RetrievedMessage(number=number, sha256=digest.hexdigest(), size=size, file=spool)

    def top(self, number: int, lines: int = 0) -> bytes:
        """TOP (RFC 1939 §7): the header, the blank line and the first `lines` body lines.

        Returns the octets dot-unstuffed; raises Pop3ServerError on -ERR, or without sending
        anything when the server answered CAPA without TOP (TOP is optional, RFC 2449 §6.2),
        and Pop3ProtocolError past `max_response_bytes`.
        """
        if self.capabilities and "TOP" not in self.capabilities:
            raise Pop3ServerError(f"{self.endpoint.describe()}: server does not offer TOP")
        self._send(f"TOP {number} {lines}")
        context = f"TOP {number}"
        status = self._status_line(context)
        if not status.startswith(b"+OK"):
            raise Pop3ServerError(
                f"{self.endpoint.describe()}: {context} refused: {server_text(status)}"
            )
        blocks: list[bytes] = []
        size = 0
        for block in self._wire.multiline_blocks(context):
            size += len(block)
            if size > self.endpoint.max_response_bytes:
                raise Pop3ProtocolError(
                    f"{self.endpoint.describe()}: {context} exceeds "
                    f"{self.endpoint.max_response_bytes} bytes; giving up on the session"
                )
            blocks.append(block)
        return b"".join(blocks)

    def delete(self, numbers: Sequence[int], window: int = 16) -> list[int]:
        """DELE each number (marks only; the server deletes at QUIT). Returns those acknowledged."""
        depth = max(1, window) if self.pipelining else 1
        acknowledged: list[int] = []
        pending: deque[int] = deque()
        for number in numbers:
            self._send(f"DELE {number}")
            pending.append(number)
            if len(pending) >= depth:
                self._dele_reply(pending.popleft(), acknowledged)
        while pending:
            self._dele_reply(pending.popleft(), acknowledged)
        return acknowledged

    def _dele_reply(self, number: int, acknowledged: list[int]) -> None:
        status = self._status_line(f"DELE {number}")
        if status.startswith(b"+OK"):
            acknowledged.append(number)
        else:
            log.warning(
                "%s: DELE %d refused: %s", self.endpoint.describe(), number, server_text(status)
            )

    def quit(self) -> None:
        """QUIT enters the UPDATE state (RFC 1939 §6); -ERR means deletions may be partial."""
        try:
            self._send("QUIT")
            status = self._status_line("QUIT")
        finally:
            self.close()
        if not status.startswith(b"+OK"):
            error = (
                Pop3TemporaryError if response_code(status) in TRANSIENT_CODES else Pop3ServerError
            )
            raise error(
                f"{self.endpoint.describe()}: QUIT failed, deletions not confirmed: "
                f"{server_text(status)}"
            )

    def close(self) -> None:
        """Drop the connection without QUIT: the server then deletes nothing (RFC 1939 §6)."""
        self._wire.close()

    def _send(self, line: str, *, redact: bool = False) -> None:
        self._wire.send(line, redact=redact)

    def _status_line(self, context: str) -> bytes:
        return self._wire.status_line(context)

    def _expect_ok(self, context: str) -> bytes:
        status = self._status_line(context)
        if not status.startswith(b"+OK"):
            code = response_code(status)
            error = Pop3TemporaryError if code in TRANSIENT_CODES else Pop3ServerError
            raise error(f"{self.endpoint.describe()}: {context} failed: {server_text(status)}")
        return status

    def _multiline_lines(self, context: str) -> Iterator[bytes]:
        return self._wire.multiline_lines(context)


class _Channel:
    """The narrow view of a session that `archive.pop3.auth` works through."""

    def __init__(self, client: Pop3Client) -> None:
        self._client = client

    def send(self, line: str, *, redact: bool = False) -> None:
        self._client._send(line, redact=redact)

    def status(self, context: str) -> bytes:
        return self._client._status_line(context)

    def fail(self, command: str, status: bytes) -> NoReturn:
        self._client._raise_login_error(command, status)

    def describe(self) -> str:
        return self._client.endpoint.describe()
