"""The POP3 wire: one socket, its line framing, dot-unstuffing and TLS (RFC 1939 §3, RFC 8314).

Every read has a timeout, every response a size limit, and every error names the mailbox's
endpoint; none quotes a credential (lines carrying one are sent with ``redact=True``).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from archive.errors import Pop3ConnectionError, Pop3ProtocolError, Pop3TLSError

log = logging.getLogger(__name__)

# RFC 2449 §4: responses are at most 512 octets including CRLF. Be lenient, not unbounded.
MAX_STATUS_LINE = 4096
# RFC 2449 §4: commands are at most 255 octets including CRLF.
MAX_COMMAND = 255  # RFC 2449 §4
CHUNK = 64 * 1024
_RESP_CODE = re.compile(rb"^-ERR \[([A-Za-z0-9/-]+)")

TlsMode = Literal["implicit", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a mailbox lives; `label` names it in every error message."""

    host: str
    port: int
    tls: TlsMode = "implicit"
    ca_file: Path | None = None
    timeout: float = 60.0
    label: str = ""
    # Use PIPELINING when the server offers it (RFC 2449 §6.6); False forces lock-step.
    pipelining: bool = True
    # A single response (one message, one listing) larger than this fails the session.
    max_response_bytes: int = 1 << 30

    def describe(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{self.label} ({where})" if self.label else where


class Wire:
    """A connected socket with a buffered reader; STLS swaps both for TLS ones."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=CHUNK)
        self.endpoint = endpoint

    def close(self) -> None:
        for closer in (self.reader.close, self.sock.close):
            try:
                closer()
            except OSError:
                log.debug("%s: error while closing", self.endpoint.describe())

    def start_tls(self) -> None:
        """Wrap the connection in TLS after STLS (RFC 2595 §4)."""
        self.reader.close()
        self.sock = wrap_tls(self.sock, self.endpoint)
        self.reader = self.sock.makefile("rb", buffering=CHUNK)

    def send(self, line: str, *, redact: bool = False) -> None:
        data = line.encode("utf-8") + b"\r\n"
        if len(data) > MAX_COMMAND and not redact:
            raise Pop3ProtocolError(f"{self.endpoint.describe()}: command too long: {line[:40]}")
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise Pop3ConnectionError(
                f"{self.endpoint.describe()}: connection lost while sending: {os_reason(exc)}"
            ) from None

    def readline(self, limit: int, context: str) -> bytes:
        try:
            line = self.reader.readline(limit)
        except TimeoutError:
            raise Pop3ConnectionError(
                f"{self.endpoint.describe()}: timed out after {self.endpoint.timeout:g}s "
                f"waiting for {context}"
            ) from None
        except ssl.SSLError as exc:
            raise Pop3ConnectionError(
                f"{self.endpoint.describe()}: TLS error during {context}: {exc.reason}"
            ) from None
        except OSError as exc:
            raise Pop3ConnectionError(
                f"{self.endpoint.describe()}: connection lost during {context}: {os_reason(exc)}"
            ) from None
        if not line:
            raise Pop3ConnectionError(
                f"{self.endpoint.describe()}: server closed the connection during {context}"
            )
        return line

    def status_line(self, context: str) -> bytes:
        line = self.readline(MAX_STATUS_LINE, context)
        if not line.endswith(b"\n"):
            raise Pop3ProtocolError(
                f"{self.endpoint.describe()}: response to {context} longer than "
                f"{MAX_STATUS_LINE} bytes"
            )
        line = line.rstrip(b"\r\n")
        if not (line.startswith(b"+") or line.startswith(b"-ERR")):
            raise Pop3ProtocolError(
                f"{self.endpoint.describe()}: unexpected response to {context}: {line[:80]!r}"
            )
        return line

    def multiline_chunks(self, context: str) -> Iterator[bytes]:
        """Yield the body of a multi-line response, dot-unstuffed, in chunks of ≤ CHUNK bytes.

        A line longer than CHUNK arrives in several chunks; only a chunk that starts a line
        can be the terminator or carry a stuffed dot (RFC 1939 §3).
        """
        at_line_start = True
        while True:
            chunk = self.readline(CHUNK, context)
            if at_line_start:
                if chunk in (b".\r\n", b".\n"):
                    return
                if chunk.startswith(b"."):
                    chunk = chunk[1:]
            at_line_start = chunk.endswith(b"\n")
            yield chunk

    def multiline_lines(self, context: str) -> Iterator[bytes]:
        partial = b""
        total = 0
        for chunk in self.multiline_chunks(context):
            total += len(chunk)
            if total > self.endpoint.max_response_bytes:
                raise Pop3ProtocolError(
                    f"{self.endpoint.describe()}: {context} listing exceeds "
                    f"{self.endpoint.max_response_bytes} bytes"
                )
            partial += chunk
            if len(partial) > MAX_STATUS_LINE:
                raise Pop3ProtocolError(
                    f"{self.endpoint.describe()}: line in {context} listing too long"
                )
            if partial.endswith(b"\n"):
                yield partial.rstrip(b"\r\n")
                partial = b""


def wrap_tls(sock: socket.socket, endpoint: Endpoint) -> socket.socket:
    """Verified TLS (RFC 8314 §3): CA chain and host name, from the system store or `ca_file`."""
    context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        return context.wrap_socket(sock, server_hostname=endpoint.host)
    except ssl.SSLCertVerificationError as exc:
        raise Pop3TLSError(
            f"{endpoint.describe()}: TLS certificate not trusted: {exc.verify_message}"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise Pop3ConnectionError(
            f"{endpoint.describe()}: TLS handshake failed: {os_reason(exc)}"
        ) from None


def response_code(status: bytes) -> str | None:
    match = _RESP_CODE.match(status)
    return match.group(1).decode().upper() if match else None


def server_text(status: bytes) -> str:
    return status[:200].decode("utf-8", "replace")


def os_reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
