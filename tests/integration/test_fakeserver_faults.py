"""Broken and slow responses of the fake POP3 server (``fault`` and ``trickle``), read from raw
sockets, and a prompt stop() whatever a session is doing."""

from __future__ import annotations

import socket
import threading

import pytest

from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.integration.test_fakeserver import DOTTED, PLAIN, RawClient

MESSAGE = b"Subject: fault\r\n\r\n" + b"".join(b"line %03d\r\n" % n for n in range(100))


def _server(**options: object) -> FakePop3Server:
    box = FakeMailbox("pw", [MESSAGE, PLAIN])
    return FakePop3Server({"u": box}, options=FakeServerOptions(lock_wait=5, **options))  # type: ignore[arg-type]


def test_garbage_status_line_then_the_body():
    with _server(fault="garbage_status") as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 1\r\nSTAT\r\n")
        status = raw.line()
        assert not status.startswith((b"+OK", b"-ERR"))
        assert status == b"OK here comes your message"
        assert raw.wire() == MESSAGE
        assert raw.line() == f"+OK 2 {len(MESSAGE) + len(PLAIN)}".encode()
        raw.close()


def test_oversized_status_line_is_10000_bytes():
    with _server(fault="oversized_status") as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 2\r\n")
        status = raw.reader.readline()
        assert len(status) == 10_000
        assert status.startswith(f"+OK {len(PLAIN)} octets ".encode())
        assert status.endswith(b"x\r\n")
        assert raw.wire() == PLAIN
        raw.close()


def test_oversized_listing_lines_in_uidl():
    with _server(fault="oversized_listing_line") as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"UIDL\r\nUIDL 2\r\nLIST\r\n")
        assert raw.line() == f"+OK 2 messages ({len(MESSAGE) + len(PLAIN)} octets)".encode()
        lines = raw.wire().splitlines(keepends=True)
        assert [len(line) for line in lines] == [10_000, 10_000]
        assert [line[:2] for line in lines] == [b"1 ", b"2 "]
        assert len(raw.reader.readline()) == len(b"+OK ") + 10_000
        assert raw.line().startswith(b"+OK")  # LIST is normal
        assert raw.wire() == f"1 {len(MESSAGE)}\r\n2 {len(PLAIN)}\r\n".encode()
        raw.close()


def test_endless_retr_never_ends_and_deletes_nothing():
    with _server(fault="endless_retr") as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"DELE 2\r\nRETR 1\r\n")
        assert raw.line().startswith(b"+OK Message 2")
        assert raw.line() == f"+OK {len(MESSAGE)} octets".encode()
        assert raw.line() == b"Subject: fault"
        assert raw.line() == b""
        received = 0
        while received < 2_000_000:  # far more than the message's size
            line = raw.reader.readline()
            assert line not in (b".\r\n", b"")
            assert line.endswith(b"\r\n")
            received += len(line)
        raw.close()
        # The client went away, so the session ends without UPDATE and unlocks.
        again = RawClient(server)
        assert again.login().startswith(b"+OK Logged in, maildrop has 2 messages")
        again.close()
        assert server.mailbox("u").messages == [MESSAGE, PLAIN]


def test_stall_retr_sends_half_a_message_then_nothing():
    body_half = MESSAGE[: (len(MESSAGE) + 3) // 2]  # dot-stuffed body plus ".\r\n", halved
    with _server(fault="stall_retr") as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"DELE 2\r\nRETR 1\r\n")
        assert raw.line().startswith(b"+OK Message 2")
        assert raw.line() == f"+OK {len(MESSAGE)} octets".encode()
        assert raw.reader.read(len(body_half)) == body_half
        raw.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            raw.sock.recv(1)  # the connection stays open and silent
        raw.close()
        again = RawClient(server)
        assert again.login().startswith(b"+OK Logged in, maildrop has 2 messages")
        again.close()


def test_stall_retr_ends_at_the_server_timeout():
    with _server(fault="stall_retr", timeout=0.3) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 2\r\n")
        assert raw.line() == f"+OK {len(PLAIN)} octets".encode()
        rest = raw.reader.read()  # until the server gives up and closes
        raw.close()
    assert rest == PLAIN[: (len(PLAIN) + 3) // 2]


def _chunks(sock: socket.socket, end: bytes) -> list[bytes]:
    chunks: list[bytes] = []
    while not b"".join(chunks).endswith(end):
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        chunks.append(chunk)
    return chunks


def test_trickle_sends_multiline_responses_in_tiny_writes():
    box = FakeMailbox("pw", [DOTTED])
    options = FakeServerOptions(trickle=(1, 0.005))
    with FakePop3Server({"u": box}, options=options) as server:
        sock = socket.create_connection((server.host, server.port), timeout=5)
        greeting = _chunks(sock, b"\r\n")
        sock.sendall(b"USER u\r\nPASS pw\r\n")
        _chunks(sock, b"octets)\r\n")
        sock.sendall(b"RETR 1\r\n")
        expected = f"+OK {len(DOTTED)} octets\r\n".encode() + DOTTED.replace(b"\r\n.", b"\r\n..")
        chunks = _chunks(sock, b"\r\n.\r\n")
        sock.close()
    assert greeting == [b"+OK mailarchive fake POP3 server ready\r\n"]  # status lines: one write
    assert b"".join(chunks) == expected + b".\r\n"
    # One byte per write, 5 ms apart: the client sees the response in many pieces.
    assert len(chunks) > 10


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


@pytest.mark.parametrize(
    "options",
    [
        {"fault": "endless_retr"},
        {"fault": "stall_retr"},
        {"trickle": (1, 30.0)},
    ],
)
def test_stop_is_prompt_during_faults(options: dict):
    before = set(threading.enumerate())
    server = _server(**options).start()
    raw = RawClient(server)
    raw.login()
    raw.send(b"RETR 1\r\n")
    assert raw.reader.read(1) == b"+"  # the response has begun; the client stops reading
    server.stop()
    # stop() joins the session threads; none may outlive it.
    assert _new_threads(before) == []
    raw.close()


@pytest.mark.parametrize(
    ("fault", "left"), [("drop_before_quit", [MESSAGE, PLAIN]), ("drop_after_update", [PLAIN])]
)
def test_quit_faults_close_without_a_reply(fault: str, left: list[bytes]):
    with _server(fault=fault) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"DELE 1\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.reader.readline() == b""  # closed, no answer to QUIT
        raw.close()
        # Unlocked either way; UPDATE happened only for drop_after_update.
        again = RawClient(server)
        assert again.login().startswith(f"+OK Logged in, maildrop has {len(left)}".encode())
        again.close()
        assert server.mailbox("u").messages == left
