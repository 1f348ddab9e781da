"""What the pipeline needs from one POP3 session: the `MailSource` seam.

`archive.pop3.client.Pop3Client` implements it over a socket; the in-memory
`archive.pop3.fake.memory.MemoryPop3` implements it over a dict of maildrops, so the
pipeline can be tested without sockets. A `Connector` opens one session for an `Endpoint`.

The semantics every implementation keeps (RFC 1939):
- message numbers are valid within one session only (§4); unique-ids (UIDLs) across
  sessions (§7), though servers may give identical messages one unique-id;
- DELE only marks a message (§5); the server deletes marked messages when it answers QUIT
  with +OK (§6, the UPDATE state); a session closed without QUIT deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from archive.pop3.types import AuthMethod
from archive.pop3.wire import Endpoint

__all__ = ["Connector", "Endpoint", "Listed", "MailSource", "RetrievedMessage"]


@dataclass(slots=True)
class RetrievedMessage:
    """One message as the server sent it, spooled to memory or a temp file, with its hash.

    `size` is in octets, after dot-unstuffing (RFC 1939 §3); `sha256` is the hex digest of
    exactly those octets. The caller closes it.
    """

    number: int
    sha256: str
    size: int
    file: IO[bytes] = field(repr=False)

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True, slots=True)
class Listed:
    """One line of the scan listing: `uidl` is the unique-id's octets as the server sent them
    (never decoded, see `archive.pop3.uidl`); `size` is what LIST announced (it may be an
    estimate, and it is not evidence of identity on its own)."""

    number: int
    uidl: bytes
    size: int | None


class MailSource(Protocol):
    """One POP3 session, from after the greeting to QUIT or close.

    Errors are those of `archive.errors`: `Pop3AuthError` for refused credentials,
    `Pop3TemporaryError` for -ERR [IN-USE] / [LOGIN-DELAY] / [SYS/TEMP] (RFC 2449, 3206),
    `Pop3ConnectionError` for a dropped connection, `Pop3ServerError` for any other -ERR.
    """

    @property
    def login_delay(self) -> int | None:
        """RFC 2449 §6.5 LOGIN-DELAY: seconds to wait between logins, if announced."""
        ...

    @property
    def expires_on_retrieval(self) -> bool:
        """RFC 2449 §6.7 `EXPIRE 0`: a retrieved message may be deleted at QUIT."""
        ...

    def login(self, username: str, secret: str, method: AuthMethod = "auto") -> None:
        """Authenticate; `secret` is the password, or the access token for OAuth methods."""
        ...

    def listing(self) -> list[Listed]:
        """UIDL and LIST (RFC 1939 §5, §7): every message's number, unique-id and size."""
        ...

    def retrieve(self, numbers: Sequence[int], window: int = 8) -> Iterator[RetrievedMessage]:
        """RETR each number in order, yielding each message as it arrives (RFC 1939 §5).

        `window` bounds the RETR commands in flight when the server offers PIPELINING.
        """
        ...

    def top(self, number: int, lines: int = 0) -> bytes:
        """TOP (RFC 1939 §7): the header, blank line and first `lines` body lines, unstuffed."""
        ...

    def delete(self, numbers: Sequence[int]) -> list[int]:
        """DELE each number (marks only, RFC 1939 §5); returns the numbers acknowledged."""
        ...

    def quit(self) -> None:
        """QUIT: +OK means marked messages are deleted (RFC 1939 §6); else raises."""
        ...

    def close(self) -> None:
        """Drop the session without QUIT: the server deletes nothing (RFC 1939 §6)."""
        ...


Connector = Callable[[Endpoint], MailSource]
"""Opens one session (connect, greeting, CAPA, TLS) to an endpoint; raises as `MailSource`."""
