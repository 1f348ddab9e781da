"""The in-memory MailSource keeps RFC 1939's promises: DELE marks, QUIT deletes, a drop
deletes nothing, one session per maildrop; and its faults fail the way the client does."""

from __future__ import annotations

import hashlib

import pytest

from archive.errors import Pop3AuthError, Pop3ConnectionError, Pop3ServerError, Pop3TemporaryError
from archive.pop3.fake.memory import MemoryFaults, MemoryMaildrop, MemoryPop3
from archive.pop3.source import Endpoint, Listed, MailSource

ENDPOINT = Endpoint("pop.example", 110, "none", label="mailbox 'u'")
RAW = [b"Subject: one\r\n\r\nfirst\r\n", b"Subject: two\r\n\r\nsecond\r\nline\r\n"]


def _server(**options: object) -> MemoryPop3:
    return MemoryPop3({"u": MemoryMaildrop("pw", list(RAW))}, **options)  # type: ignore[arg-type]


def _session(server: MemoryPop3) -> MailSource:
    source: MailSource = server.connect(ENDPOINT)
    source.login("u", "pw")
    return source


def test_listing_and_retrieval_give_exact_bytes_and_hashes():
    server = _server()
    source = _session(server)
    assert source.listing() == [Listed(1, b"m1", len(RAW[0])), Listed(2, b"m2", len(RAW[1]))]
    got = list(source.retrieve([2, 1]))
    assert [(m.number, m.read(), m.size) for m in got] == [
        (2, RAW[1], len(RAW[1])),
        (1, RAW[0], len(RAW[0])),
    ]
    assert got[0].sha256 == hashlib.sha256(RAW[1]).hexdigest()
    assert source.top(2, 1) == b"Subject: two\r\n\r\nsecond\r\n"
    source.quit()
    assert server.commands() == [
        "USER u",
        "PASS ***",
        "UIDL",
        "LIST",
        "RETR 2",
        "RETR 1",
        "TOP 2 1",
        "QUIT",
    ]


def test_unique_ids_are_listed_octet_for_octet():
    server = MemoryPop3({"u": MemoryMaildrop("pw", list(RAW), uidls=[b"b\xffx", "s"])})
    assert [item.uidl for item in _session(server).listing()] == [b"b\xffx", b"s"]


def test_dele_only_marks_and_quit_deletes():
    server = _server()
    source = _session(server)
    assert source.delete([1, 1, 7]) == [1]  # a marked or unknown message is refused
    with pytest.raises(Pop3ServerError, match="RETR 1 refused"):
        list(source.retrieve([1]))
    assert server.maildrops["u"].messages == RAW
    source.quit()
    assert server.maildrops["u"].messages == [RAW[1]]


def test_a_closed_session_deletes_nothing_and_unlocks():
    server = _server()
    source = _session(server)
    source.delete([1, 2])
    source.close()
    assert server.maildrops["u"].messages == RAW
    with pytest.raises(Pop3ConnectionError):
        source.listing()
    _session(server).quit()  # the maildrop lock was released
    assert server.open_sessions == 0 and server.peak_open_sessions == 1


def test_a_second_session_on_a_locked_maildrop_is_in_use():
    server = _server()
    _session(server)
    with pytest.raises(Pop3TemporaryError, match=r"\[IN-USE\]"):
        _session(server)


def test_wrong_password_is_an_auth_error():
    with pytest.raises(Pop3AuthError):
        _server().connect(ENDPOINT).login("u", "wrong")


def test_scripted_login_error_for_the_first_logins_only():
    server = _server(faults=MemoryFaults(login_error_code="SYS/TEMP", login_error_count=1))
    with pytest.raises(Pop3TemporaryError, match=r"\[SYS/TEMP\]"):
        _session(server)
    _session(server).quit()


def test_drop_mid_retrieve_deletes_nothing():
    server = _server(faults=MemoryFaults(drop_after_retrieved=1))
    source = _session(server)
    source.delete([2])
    retrieved = []
    with pytest.raises(Pop3ConnectionError, match="during RETR 2"):
        for message in source.retrieve([1, 2]):
            retrieved.append(message.number)
    assert retrieved == [1] and server.maildrops["u"].messages == RAW


@pytest.mark.parametrize(
    ("faults", "error", "left"),
    [
        (MemoryFaults(quit_error=True), Pop3ServerError, RAW),
        (MemoryFaults(drop_on_quit=True), Pop3ConnectionError, RAW),
        (MemoryFaults(drop_on_quit=True, applied_before_drop=True), Pop3ConnectionError, RAW[1:]),
    ],
)
def test_failed_quit(faults, error, left):
    server = _server(faults=faults)
    source = _session(server)
    source.delete([1])
    with pytest.raises(error):
        source.quit()
    assert server.maildrops["u"].messages == left and server.open_sessions == 0


def test_expire_zero_deletes_what_was_retrieved_at_quit():
    server = _server(expire_zero=True)
    source = _session(server)
    assert source.expires_on_retrieval
    list(source.retrieve([2]))
    source.quit()
    assert server.maildrops["u"].messages == [RAW[0]]


def test_max_listed_hides_what_a_quit_session_downloaded():
    server = MemoryPop3({"u": MemoryMaildrop("pw", [b"a", b"b", b"c"])}, max_listed=2)
    first = _session(server)
    assert [item.uidl for item in first.listing()] == [b"m1", b"m2"]
    list(first.retrieve([1, 2]))
    first.quit()
    assert [item.uidl for item in _session(server).listing()] == [b"m3"]


def test_a_session_sees_the_maildrop_as_it_was_at_login():
    server = _server()
    source = _session(server)
    server.maildrops["u"].add(b"late")
    assert len(source.listing()) == 2
    source.quit()
    assert len(_session(server).listing()) == 3
