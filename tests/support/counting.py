"""Counts POP3 sessions open at once, from connect to QUIT or close (tests, benchmarks).

A `Connector` wrapper: hand `ConnectionCount().connector()` to the `Archiver` (its
`connect` field) instead of patching the client class.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from archive.pop3.client import Pop3Client
from archive.pop3.source import Connector, Endpoint, Listed, MailSource, RetrievedMessage
from archive.pop3.types import AuthMethod


@dataclass
class ConnectionCount:
    """`open`: sessions connected and not yet closed; `peak`: the most open at once."""

    open: int = 0
    peak: int = 0
    opened: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connector(self, connect: Connector = Pop3Client.connect) -> Connector:
        """`connect`, counting each session it opens until that session ends."""

        def counted(endpoint: Endpoint) -> MailSource:
            source = connect(endpoint)
            with self._lock:
                self.open += 1
                self.opened += 1
                self.peak = max(self.peak, self.open)
            return _Counted(source, self)

        return counted

    def _closed(self) -> None:
        with self._lock:
            self.open -= 1


class _Counted:
    """A MailSource that tells its count when the session ends (QUIT or close, once)."""

    def __init__(self, source: MailSource, count: ConnectionCount) -> None:
        self._source = source
        self._count: ConnectionCount | None = count

    @property
    def login_delay(self) -> int | None:
        return self._source.login_delay

    @property
    def expires_on_retrieval(self) -> bool:
        return self._source.expires_on_retrieval

    def login(self, username: str, secret: str, method: AuthMethod = "auto") -> None:
        self._source.login(username, secret, method)

    def listing(self) -> list[Listed]:
        return self._source.listing()

    def retrieve(self, numbers: Sequence[int], window: int = 8) -> Iterator[RetrievedMessage]:
        return self._source.retrieve(numbers, window)

    def top(self, number: int, lines: int = 0) -> bytes:
        return self._source.top(number, lines)

    def delete(self, numbers: Sequence[int]) -> list[int]:
        return self._source.delete(numbers)

    def quit(self) -> None:
        try:
            self._source.quit()
        finally:
            self._ended()

    def close(self) -> None:
        self._source.close()
        self._ended()

    def _ended(self) -> None:
        count, self._count = self._count, None
        if count is not None:
            count._closed()
