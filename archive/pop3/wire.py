"""The POP3 wire: one socket, its line framing, dot-unstuffing and TLS (RFC 1939 §3, RFC 8314).

Every read has a timeout, every response a size limit, and every error names the mailbox's
endpoint; none quotes a credential (lines carrying one are sent with ``redact=True``).
"""

from __future__ import annotations

import io
import logging
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from archive.defaults import MAX_MESSAGE_BYTES, TIMEOUT_SECONDS
from archive.errors import Pop3ConnectionError, Pop3ProtocolError, Pop3TLSError
from archive.pop3.types import TlsMode

log = logging.getLogger(__name__)

# RFC 2449 §4: responses are at most 512 octets including CRLF. Be lenient, not unbounded.
MAX_STATUS_LINE = 4096
# RFC 2449 §4: commands are at most 255 octets including CRLF.
MAX_COMMAND = 255  # RFC 2449 §4
CHUNK = 64 * 1024
_RESP_CODE = re.compile(rb"^-ERR \[([A-Za-z0-9/-]+)")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a mailbox lives; `label` names it in every error message."""

    host: str
    port: int
    tls: TlsMode = "implicit"
    ca_file: Path | None = None
    timeout: float = TIMEOUT_SECONDS
    label: str = ""
    # Use PIPELINING when the server offers it (RFC 2449 §6.6); False forces lock-step.
    pipelining: bool = True
    # A single response (one message, one listing) larger than this fails the session.
    max_response_bytes: int = MAX_MESSAGE_BYTES

    def describe(self) -> str:
        where = f"{self.host}:{self.port}"
        return f"{self.label} ({where})" if self.label else where


def _buffered_reader(sock: socket.socket) -> io.BufferedReader:
    # makefile("rb") with a buffer size is a BufferedReader (it has peek()); typeshed only
    # narrows the return type for the default buffer sizes.
    return cast(io.BufferedReader, sock.makefile("rb", buffering=CHUNK))


class Wire:
    """A connected socket with a buffered reader; STLS swaps both for TLS ones."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint) -> None:
        self.sock = sock
        self.reader = _buffered_reader(sock)
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
        self.reader = _buffered_reader(self.sock)

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
        return self._read(self.reader.readline, limit, context)

    def _read(self, method: Callable[[int], bytes], limit: int, context: str) -> bytes:
        try:
            data = method(limit)
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
        if not data:
            raise Pop3ConnectionError(
                f"{self.endpoint.describe()}: server closed the connection during {context}"
            )
        return data

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

    def multiline_blocks(self, context: str) -> Iterator[bytes]:
        """The body of a multi-line response, dot-unstuffed, in blocks as the socket delivers.

        A message body has no line limit and most of its lines need nothing done, so it is
        unstuffed a buffer at a time instead of a line at a time (a third of the CPU per
        message). The reader's buffer is peeked and only what was decided is consumed, so the
        bytes after the terminator (a pipelined response) stay in the reader.
        """
        carry = b""
        at_line_start = True
        while True:
            data = self._read(self.reader.peek, CHUNK, context)
            block, end, carry_next, at_line_start = unstuff(carry + data, at_line_start)
            if end is not None:
                self.reader.read(end - len(carry))
                if block:
                    yield block
                return
            self.reader.read(len(data))
            carry = carry_next
            if block:
                yield block

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


def unstuff(data: bytes, at_line_start: bool) -> tuple[bytes, int | None, bytes, bool]:
    """Undo dot-stuffing in `data` (RFC 1939 §3) and find the terminating ".CRLF" line.

    Returns (unstuffed bytes, the end of the terminator in `data` or None, an undecided tail,
    whether what follows starts a line). The tail is a line-start dot with too few bytes
    after it to tell a terminator from a stuffed dot; it goes in front of the next block.
    """
    out: list[bytes] = []
    emit = 0
    if at_line_start and data[:1] == b".":
        dot = 0
    else:
        found = data.find(b"\n.")
        dot = found + 1 if found != -1 else -1
    while dot != -1:
        after = data[dot + 1 : dot + 3]
        if after[:1] == b"\n" or after == b"\r\n":
            out.append(data[emit:dot])
            return b"".join(out), dot + 1 + (1 if after[:1] == b"\n" else 2), b"", True
        if after in (b"", b"\r"):
            out.append(data[emit:dot])
            return b"".join(out), None, data[dot:], True
        out.append(data[emit:dot])
        emit = dot + 1  # a stuffed dot: drop it
        found = data.find(b"\n.", dot + 1)
        dot = found + 1 if found != -1 else -1
    out.append(data[emit:])
    return b"".join(out), None, b"", data.endswith(b"\n")


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
