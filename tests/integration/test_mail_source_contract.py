"""One contract, two MailSources: the in-memory fake must behave like the real client
talking to a POP3 server (here the TCP fake server), or the pipeline's unit tests lie."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from archive.errors import Pop3AuthError, Pop3TemporaryError
from archive.pop3.client import Pop3Client
from archive.pop3.fake.memory import MemoryMaildrop, MemoryPop3
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from archive.pop3.source import Endpoint, Listed, MailSource

RAW = [
    b"Subject: one\r\n\r\n.dotted\r\nfirst\r\n",
    b"Subject: two\r\n\r\nsecond\r\n",
    b"Subject: three\r\n\r\nthird\r\n",
]
# Octet for octet, 0xFC included: some servers send ids outside RFC 1939's 0x21-0x7E.
UIDLS = [b"u-1", b"u-\xfc2", b"u-\xfc2"]


@dataclass
class Server:
    connect: Callable[[], MailSource]
    messages: Callable[[], list[bytes]]


@pytest.fixture(params=["memory", "tcp"])
def server(request) -> Iterator[Server]:
    if request.param == "memory":
        memory = MemoryPop3({"u": MemoryMaildrop("pw", list(RAW), list(UIDLS))})
        yield Server(
            lambda: memory.connect(Endpoint("memory", 110, "none")),
            lambda: memory.maildrops["u"].messages,
        )
        return
    box = FakeMailbox("pw", list(RAW), uidls=list(UIDLS))
    with FakePop3Server({"u": box}, options=FakeServerOptions(lock_wait=0)) as tcp:
        endpoint = Endpoint(tcp.host, tcp.port, "none", timeout=10)
        yield Server(lambda: Pop3Client.connect(endpoint), lambda: tcp.mailbox("u").messages)


def _logged_in(server: Server) -> MailSource:
    source = server.connect()
    source.login("u", "pw", "user")
    return source


def test_listing_and_retrieval(server: Server):
    source = _logged_in(server)
    assert source.listing() == [
        Listed(n, uidl, len(raw))
        for n, (uidl, raw) in enumerate(zip(UIDLS, RAW, strict=True), start=1)
    ]
    got = [(m.number, m.read(), m.sha256, m.size) for m in source.retrieve([3, 1])]
    assert got == [
        (n, RAW[n - 1], hashlib.sha256(RAW[n - 1]).hexdigest(), len(RAW[n - 1])) for n in (3, 1)
    ]
    assert source.top(1, 1) == b"Subject: one\r\n\r\n.dotted\r\n"
    source.quit()


def test_dele_marks_and_quit_deletes(server: Server):
    source = _logged_in(server)
    assert source.delete([2, 3]) == [2, 3]
    assert server.messages() == RAW
    source.quit()
    assert server.messages() == [RAW[0]]


def _logged_in_once_released(server: Server) -> MailSource:
    """Log in again after a dropped session. A TCP server notices the drop on its own
    thread, so its maildrop lock may outlive the client's close() by a moment: [IN-USE]
    until then (with lock_wait=0), as a real server's lock does."""
    for _ in range(200):
        try:
            return _logged_in(server)
        except Pop3TemporaryError:
            time.sleep(0.05)
    return _logged_in(server)


def test_close_without_quit_deletes_nothing(server: Server):
    source = _logged_in(server)
    source.delete([1, 2, 3])
    source.close()
    assert server.messages() == RAW
    _logged_in_once_released(server).quit()  # and the maildrop is free again


def test_a_second_session_on_the_maildrop_is_in_use(server: Server):
    first = _logged_in(server)
    with pytest.raises(Pop3TemporaryError, match="IN-USE|locked"):
        _logged_in(server)
    first.quit()


def test_wrong_password(server: Server):
    source = server.connect()
    with pytest.raises(Pop3AuthError):
        source.login("u", "wrong", "user")
    source.close()
