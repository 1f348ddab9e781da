"""Line I/O of a fake POP3 session: CRLF lines in, replies and dot-stuffed multi-line
responses out (RFC 1939 §3), with the limits that keep an abusive client from costing
unbounded memory."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import BinaryIO

from archive.pop3.fake.wire import MAX_DISCARD, dot_stuff


class LineTooLong(Exception):
    pass


class SessionDisconnect(Exception):
    """End the session without the UPDATE state: EOF, a drop, or an abusive client."""


class LineIO:
    """What `Session` reads and writes with; `send` is the session's (it may trickle)."""

    sock: socket.socket
    reader: BinaryIO | None

    def send(self, data: bytes, *, multiline: bool = False) -> None:
        raise NotImplementedError

    def _read_line(self, limit: int) -> bytes:
        """One line without its CRLF (a bare LF is accepted too)."""
        assert self.reader is not None
        line = self.reader.readline(limit)
        if line.endswith(b"\n"):
            return line[:-1].removesuffix(b"\r")
        if len(line) < limit:
            raise SessionDisconnect("client closed the connection")
        skipped = 0
        while not line.endswith(b"\n"):
            line = self.reader.readline(8192)
            skipped += len(line)
            if not line or skipped > MAX_DISCARD:
                raise SessionDisconnect("overlong line")
        raise LineTooLong

    def wait_for_close(self) -> None:
        """Read and drop client bytes until EOF, the socket timeout, or stop()."""
        while self.sock.recv(65536):
            pass

    def _reply(self, line: str) -> None:
        self.send(line.encode("utf-8", "surrogateescape") + b"\r\n")

    def _multiline(self, status: str, lines: Iterable[str]) -> None:
        body = "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")
        self.send(status.encode("utf-8") + b"\r\n" + dot_stuff(body), multiline=True)
