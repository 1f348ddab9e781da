"""Counts POP3 client connections open at once, from connect to close (tests, benchmarks)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from archive.pop3.client import Endpoint, Pop3Client


@dataclass
class ConnectionCount:
    open: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@contextmanager
def counted_connections() -> Iterator[ConnectionCount]:
    """Patch Pop3Client for the duration; the server side would see closes a moment late."""
    count = ConnectionCount()
    connect, close = Pop3Client.__dict__["connect"], Pop3Client.close

    def counted_connect(cls: type[Pop3Client], endpoint: Endpoint) -> Pop3Client:
        client = connect.__func__(cls, endpoint)
        with count._lock:
            count.open += 1
            count.peak = max(count.peak, count.open)
        return client

    def counted_close(self: Pop3Client) -> None:
        close(self)
        with count._lock:
            count.open -= 1

    Pop3Client.connect = classmethod(counted_connect)  # type: ignore[method-assign,assignment]
    Pop3Client.close = counted_close  # type: ignore[method-assign]
    try:
        yield count
    finally:
        Pop3Client.connect = connect  # type: ignore[method-assign]
        Pop3Client.close = close  # type: ignore[method-assign]
