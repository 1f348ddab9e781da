"""Scripted server behaviour: login refusals, LOGIN-DELAY, EXPIRE, Gmail's listing cap, UIDL
resets, wrong LIST sizes, a per-user connection cap and a failed UPDATE; over raw sockets."""

from __future__ import annotations

import threading
import time

import pytest

from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.integration.test_fakeserver import PLAIN, RawClient


def _messages(count: int) -> list[bytes]:
    return [f"Subject: {n}\r\n\r\nbody {n}\r\n".encode() for n in range(1, count + 1)]


def _login_reply(server: FakePop3Server, user: str = "u", password: str = "pw") -> bytes:
    raw = RawClient(server)
    try:
        raw.send(f"USER {user}\r\nPASS {password}\r\nQUIT\r\n".encode())
        assert raw.line() == b"+OK"
        return raw.line()
    finally:
        raw.close()


def _capa(server: FakePop3Server) -> bytes:
    raw = RawClient(server)
    raw.send(b"CAPA\r\n")
    assert raw.line().startswith(b"+OK")
    capa = raw.wire()
    raw.close()
    return capa


def _uidls(raw: RawClient) -> list[str]:
    raw.send(b"UIDL\r\n")
    assert raw.line().startswith(b"+OK")
    return [line.split()[1].decode() for line in raw.wire().splitlines()]


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"login_error_count": 1}, "login_error_code"),
        ({"login_error_code": "SYS/TEMP", "login_error_count": -1}, ">= 0"),
        ({"login_delay": -1}, "login_delay"),
        ({"expire": "soon"}, "EXPIRE|expire"),
        ({"max_listed": -1}, "max_listed"),
        ({"trickle": (0, 0.1)}, "trickle"),
        ({"fault": "bogus"}, "fault"),
        ({"max_connections_per_user": 0}, "max_connections_per_user"),
        ({"quit_partial": -1}, "quit_partial"),
        ({"quit_partial": 1, "quit_error": True}, "exclude"),
    ],
)
def test_invalid_options_are_refused(kwargs: dict, message: str):
    with pytest.raises(ValueError, match=message):
        FakeServerOptions(**kwargs)


def test_defaults_keep_the_plain_behaviour():
    options = FakeServerOptions()
    assert options.advertised_capabilities() == options.capabilities
    assert (options.login_error_count, options.login_delay, options.expire) == (None,) * 3
    assert (options.max_listed, options.fault, options.trickle, options.quit_partial) == (None,) * 4
    assert (options.list_size_delta, options.apop, options.oauth_two_step_only) == (0, False, False)
    assert options.max_connections_per_user is None


def test_login_error_count_refuses_only_the_first_correct_logins():
    options = FakeServerOptions(login_error_code="SYS/TEMP", login_error_count=2)
    with FakePop3Server({"u": FakeMailbox("pw", [PLAIN])}, options=options) as server:
        assert _login_reply(server, password="wrong") == b"-ERR [AUTH] Authentication failed."
        replies = [_login_reply(server) for _ in range(3)]
        assert server.login_count("u") == 1
    assert replies[0].startswith(b"-ERR [SYS/TEMP] ")
    assert replies[1].startswith(b"-ERR [SYS/TEMP] ")
    assert replies[2].startswith(b"+OK Logged in")


def test_login_count_counts_successful_logins_only():
    boxes = {"u": FakeMailbox("pw", [PLAIN]), "v": FakeMailbox("pw", [])}
    with FakePop3Server(boxes) as server:
        _login_reply(server)
        _login_reply(server, password="wrong")
        _login_reply(server)
        _login_reply(server, "v")
        assert (server.login_count("u"), server.login_count("v")) == (2, 1)
        assert server.login_count("nobody") == 0


def test_login_delay_is_advertised_and_refuses_an_early_second_login():
    options = FakeServerOptions(login_delay=300, lock_wait=0)
    boxes = {"u": FakeMailbox("pw", [PLAIN]), "v": FakeMailbox("pw", [PLAIN])}
    with FakePop3Server(boxes, options=options) as server:
        assert b"LOGIN-DELAY 300\r\n" in _capa(server)
        assert _login_reply(server).startswith(b"+OK Logged in")
        second = _login_reply(server)
        assert second.startswith(b"-ERR [LOGIN-DELAY] ")
        assert _login_reply(server, "v").startswith(b"+OK Logged in")  # per user
        assert server.login_count("u") == 1


def test_login_delay_expires():
    options = FakeServerOptions(login_delay=1)
    with FakePop3Server({"u": FakeMailbox("pw", [PLAIN])}, options=options) as server:
        assert _login_reply(server).startswith(b"+OK Logged in")
        time.sleep(1.0)  # time.monotonic has moved at least this far
        assert _login_reply(server).startswith(b"+OK Logged in")
        assert server.login_count("u") == 2


def test_expire_0_deletes_retrieved_messages_at_quit():
    messages = _messages(3)
    options = FakeServerOptions(expire="0")
    box = FakeMailbox("pw", list(messages))
    with FakePop3Server({"u": box}, options=options) as server:
        assert b"EXPIRE 0\r\n" in _capa(server)
        raw = RawClient(server)
        raw.login()
        # RETR expires message 2; TOP does not retrieve; a dropped session expires nothing.
        raw.send(b"RETR 2\r\nTOP 3 0\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.wire() == messages[1]
        assert raw.line() == b"+OK"
        raw.wire()
        raw.close()
        # The next login waits out the dropped session's lock (lock_wait).
        assert _login_reply(server).startswith(b"+OK Logged in")
        assert box.messages == messages
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 2\r\nTOP 3 0\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK")
        raw.wire()
        assert raw.line() == b"+OK"
        raw.wire()
        assert raw.line() == b"+OK Logging out (2 messages left)"
        raw.close()
    assert box.messages == [messages[0], messages[2]]


def test_expire_never_is_only_advertised():
    messages = _messages(1)
    box = FakeMailbox("pw", list(messages))
    with FakePop3Server({"u": box}, options=FakeServerOptions(expire="NEVER")) as server:
        assert b"EXPIRE NEVER\r\n" in _capa(server)
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 1\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK")
        raw.wire()
        assert raw.line() == b"+OK Logging out (1 messages left)"
        raw.close()
    assert box.messages == messages


def test_max_listed_shows_only_the_first_undownloaded_messages():
    messages = _messages(5)
    box = FakeMailbox("pw", list(messages))
    uidls = list(box.uidls or [])
    with FakePop3Server({"u": box}, options=FakeServerOptions(max_listed=2)) as server:
        raw = RawClient(server)
        assert (
            raw.login()
            == f"+OK Logged in, maildrop has 2 messages ({2 * len(messages[0])} octets)".encode()
        )
        assert _uidls(raw) == uidls[:2]
        raw.send(b"STAT\r\nLIST\r\nRETR 3\r\nRETR 1\r\nQUIT\r\n")
        assert raw.line() == f"+OK 2 {2 * len(messages[0])}".encode()
        assert raw.line().startswith(b"+OK")
        assert raw.wire() == f"1 {len(messages[0])}\r\n2 {len(messages[1])}\r\n".encode()
        assert raw.line() == b"-ERR There is no message 3"
        assert raw.line().startswith(b"+OK")
        assert raw.wire() == messages[0]
        assert raw.line() == b"+OK Logging out (5 messages left)"  # nothing deleted
        raw.close()
        assert box.downloaded == {uidls[0]}

        # A dropped session marks nothing downloaded.
        raw = RawClient(server)
        raw.login()
        assert _uidls(raw) == uidls[1:3]
        raw.send(b"RETR 1\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.wire() == messages[1]
        raw.close()
        assert _login_reply(server).startswith(b"+OK Logged in")  # waits for the lock
        assert box.downloaded == {uidls[0]}

        # Session numbers map to the right message: DELE 2 deletes the third message.
        raw = RawClient(server)
        raw.login()
        assert _uidls(raw) == uidls[1:3]
        raw.send(b"RETR 2\r\nDELE 2\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.wire() == messages[2]
        assert raw.line() == b"+OK Message 2 marked for deletion"
        assert raw.line() == b"+OK Logging out (4 messages left)"
        raw.close()
    assert box.messages == [messages[0], messages[1], messages[3], messages[4]]
    assert box.downloaded == {uidls[0], uidls[2]}


def test_max_listed_loop_until_nothing_new():
    messages = _messages(5)
    box = FakeMailbox("pw", list(messages))
    fetched: list[bytes] = []
    with FakePop3Server({"u": box}, options=FakeServerOptions(max_listed=2)) as server:
        for _ in range(4):
            raw = RawClient(server)
            count = int(raw.login().split()[5])
            for number in range(1, count + 1):
                raw.send(f"RETR {number}\r\n".encode())
                assert raw.line().startswith(b"+OK")
                fetched.append(raw.wire())
            raw.send(b"QUIT\r\n")
            assert raw.line().startswith(b"+OK")
            raw.close()
    assert fetched == messages
    assert box.downloaded == set(box.uidls or [])


def test_reset_uidls_gives_every_message_a_new_uidl():
    box = FakeMailbox("pw", _messages(2))
    before = list(box.uidls or [])
    with FakePop3Server({"u": box}, options=FakeServerOptions(max_listed=5)) as server:
        raw = RawClient(server)
        raw.login()
        assert _uidls(raw) == before
        raw.send(b"RETR 1\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK")
        raw.wire()
        assert raw.line().startswith(b"+OK")
        raw.close()
        assert box.reset_uidls() == ["new1-1", "new1-2"]
        assert box.reset_uidls("migrated") == ["migrated2-1", "migrated2-2"]
        raw = RawClient(server)
        raw.login()
        # Downloaded marks named the old UIDLs, so both messages are listed again.
        assert _uidls(raw) == ["migrated2-1", "migrated2-2"]
        raw.close()
    assert box.uidls == ["migrated2-1", "migrated2-2"]
    with pytest.raises(ValueError, match="RFC 1939"):
        box.reset_uidls("has space")
    assert box.uidls == ["migrated2-1", "migrated2-2"]


@pytest.mark.parametrize("delta", [-7, 1000])
def test_list_size_delta_skews_list_but_not_retr(delta: int):
    messages = _messages(2)
    options = FakeServerOptions(list_size_delta=delta)
    with FakePop3Server({"u": FakeMailbox("pw", list(messages))}, options=options) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"LIST\r\nLIST 2\r\nSTAT\r\nRETR 1\r\n")
        assert raw.line().startswith(b"+OK")
        sizes = [len(m) + delta for m in messages]
        assert raw.wire() == f"1 {sizes[0]}\r\n2 {sizes[1]}\r\n".encode()
        assert raw.line() == f"+OK 2 {sizes[1]}".encode()
        assert raw.line() == f"+OK 2 {sum(map(len, messages))}".encode()
        assert raw.line() == f"+OK {len(messages[0])} octets".encode()
        assert raw.wire() == messages[0]
        raw.close()


def test_max_connections_per_user_refuses_before_the_lock():
    options = FakeServerOptions(max_connections_per_user=1, lock_wait=5)
    with FakePop3Server({"u": FakeMailbox("pw", [PLAIN])}, options=options) as server:
        first = RawClient(server)
        first.login()
        second = RawClient(server)
        second.send(b"USER u\r\nPASS pw\r\n")
        assert second.line() == b"+OK"
        # Answered at once, not after the 5 s lock wait: the cap comes first, as in Dovecot.
        assert second.line() == b"-ERR [IN-USE] Maximum number of connections from user+IP exceeded"
        first.send(b"QUIT\r\n")
        assert first.line().startswith(b"+OK")
        first.close()
        second.send(b"USER u\r\nPASS pw\r\n")
        assert second.line() == b"+OK"
        assert second.line().startswith(b"+OK Logged in")
        second.close()
        assert server.peak_sessions("u") == 1
        assert server.peak_connections == 2
        assert server.login_count("u") == 2


def test_sessions_waiting_for_the_lock_count_towards_the_cap():
    options = FakeServerOptions(max_connections_per_user=2, lock_wait=5)
    with FakePop3Server({"u": FakeMailbox("pw", [PLAIN])}, options=options) as server:
        holder = RawClient(server)
        holder.login()
        waiter = RawClient(server)
        waiter.send(b"USER u\r\nPASS pw\r\n")
        assert waiter.line() == b"+OK"
        _wait_for(lambda: server.peak_sessions("u") == 2, "the second session to wait")
        third = RawClient(server)
        third.send(b"USER u\r\nPASS pw\r\n")
        assert third.line() == b"+OK"
        assert third.line().startswith(b"-ERR [IN-USE] Maximum number of connections")
        holder.send(b"QUIT\r\n")
        assert holder.line().startswith(b"+OK")
        assert waiter.line().startswith(b"+OK Logged in")
        for raw in (holder, waiter, third):
            raw.close()
        assert server.peak_sessions("u") == 2
        assert server.peak_connections == 3


def test_peak_connections_counts_concurrent_clients():
    boxes = {f"user{i}": FakeMailbox("pw", [PLAIN]) for i in range(4)}
    with FakePop3Server(boxes) as server:
        clients = [RawClient(server) for _ in range(4)]  # each has read its greeting
        for i, raw in enumerate(clients):
            raw.login(f"user{i}")
        for raw in clients:
            raw.close()
        later = RawClient(server)
        later.close()
        assert server.peak_connections == 4
        assert [server.peak_sessions(f"user{i}") for i in range(4)] == [1] * 4
        assert server.peak_sessions("nobody") == 0


@pytest.mark.parametrize(("partial", "left"), [(0, [1, 2, 3, 4]), (1, [2, 3, 4]), (2, [2, 4])])
def test_quit_partial_applies_only_the_first_deletions(partial: int, left: list[int]):
    messages = _messages(4)
    box = FakeMailbox("pw", list(messages))
    options = FakeServerOptions(quit_partial=partial)
    with FakePop3Server({"u": box}, options=options) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"DELE 3\r\nDELE 1\r\nQUIT\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.line().startswith(b"+OK")
        assert (
            raw.line()
            == f"-ERR [SYS/TEMP] Some deleted messages not removed ({len(left)} left)".encode()
        )
        raw.close()
        assert _login_reply(server).startswith(b"+OK Logged in")  # unlocked
    assert box.messages == [messages[n - 1] for n in left]
    assert len(box.uidls or []) == len(left)


def test_threads_see_consistent_counters():
    boxes = {f"user{i}": FakeMailbox("pw", [PLAIN]) for i in range(8)}
    with FakePop3Server(boxes) as server:
        threads = [
            threading.Thread(target=lambda u=user: [_login_reply(server, u) for _ in range(5)])
            for user in boxes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [server.login_count(user) for user in boxes] == [5] * 8
