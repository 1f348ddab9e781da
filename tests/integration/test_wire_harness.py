"""The wire benchmark's delay proxy and raw row, at a tiny scale (benchmarks/wire.py).

The delay is asserted as a lower bound only: a loaded machine may add any amount.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.wire import DelayProxy, _row_raw, load_corpus
from tests.support.dovecot import Dovecot

DELAY = 0.05


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """Echoes every connection's bytes back, chunk by chunk, until the client half-closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    stopped.set()
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
    listener.close()
    thread.join()


def _round_trip(port: int, payload: bytes) -> tuple[bytes, float]:
    """Send `payload` through 127.0.0.1:port, half-close, read all; (reply, seconds)."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()

        def send() -> None:
            view = memoryview(payload)
            for offset in range(0, len(view), 10_000):
                sock.sendall(view[offset : offset + 10_000])
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        first_byte_at = None
        while data := sock.recv(1 << 16):
            first_byte_at = first_byte_at or time.monotonic()
            received += data
        sender.join()
    assert first_byte_at is not None
    return bytes(received), first_byte_at - started


def test_the_proxy_forwards_bytes_unchanged_and_in_order(echo_server: tuple[str, int]) -> None:
    payload = os.urandom(3_000_000)
    with DelayProxy(*echo_server, DELAY) as proxy:
        reply, _ = _round_trip(proxy.port, payload)
        assert reply == payload
        small, _ = _round_trip(proxy.port, b"x")
        assert small == b"x"
        assert proxy.connections == 2


def test_the_proxy_adds_its_delay_each_way(echo_server: tuple[str, int]) -> None:
    with DelayProxy(*echo_server, DELAY) as proxy:
        reply, first_byte = _round_trip(proxy.port, b"ping")
    assert reply == b"ping"
    # Out to the server and back: at least one delay each way.
    assert first_byte >= 2 * DELAY


@pytest.mark.dovecot
def test_the_raw_row_reads_every_byte_of_the_corpus_through_the_proxy(dovecot: Dovecot) -> None:
    # The session's Dovecot: this test's users are named user000..., the fixture's never.
    boxes = load_corpus(dovecot, seed=5, mailboxes=2, messages=6)
    assert [(b.name, b.messages) for b in boxes] == [("user000", 6), ("user001", 6)]
    with DelayProxy(dovecot.host, dovecot.pop3s_port, 0.005) as proxy:
        spec = {
            "host": dovecot.host,
            "port": proxy.port,
            "ca_file": str(dovecot.tls.ca_file),
            "parallel": 2,
            "boxes": [{"name": b.name, "password": b.password} for b in boxes],
        }
        result = _row_raw(spec)
    assert result["seen"] == {"user000": 6, "user001": 6}
    assert result["bytes"] == {b.name: b.served_bytes for b in boxes}
    assert all(dovecot.message_count(b.name) == 6 for b in boxes)
    assert Path(dovecot.maildir("user000")).is_dir()
