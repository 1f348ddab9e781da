"""The fake POP3 server, checked with an independent client (poplib) and raw sockets."""

from __future__ import annotations

import base64
import hashlib
import poplib
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions

PLAIN = b"From: a@example.org\r\nSubject: plain\r\n\r\nhello\r\n"
DOTTED = (
    b"From: b@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n"
    b"middle . dot\r\n"
)
NO_FINAL_CRLF = b"Subject: unterminated\r\n\r\nlast line has no CRLF"
LONG_LINE = b"Subject: long\r\n\r\n" + b"x" * 100_000 + b"\r\n.after\r\n"


def _box(*messages: bytes, password: str = "pw") -> FakeMailbox:
    return FakeMailbox(password, list(messages))


def _pop(server: FakePop3Server, user: str = "u", password: str | None = "pw") -> poplib.POP3:
    client = poplib.POP3(server.host, server.port, timeout=5)
    if password is not None:
        client.user(user)
        client.pass_(password)
    return client


def _joined(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


class RawClient:
    """A bare socket client, for what poplib cannot do: pipelining, long lines, drops."""

    def __init__(self, server: FakePop3Server, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.reader.readline().removesuffix(b"\r\n")

    def wire(self) -> bytes:
        """A multi-line body exactly as sent, without the terminating dot line."""
        lines = []
        while (line := self.reader.readline()) != b".\r\n":
            if not line:
                raise EOFError("connection closed inside a multi-line response")
            lines.append(line)
        return b"".join(lines)

    def login(self, user: str = "u", password: str = "pw") -> bytes:
        self.send(f"USER {user}\r\nPASS {password}\r\n".encode())
        assert self.line() == b"+OK"
        return self.line()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _unstuff(wire: bytes) -> bytes:
    return b"".join(
        line[1:] if line.startswith(b".") else line for line in wire.splitlines(keepends=True)
    )


@pytest.fixture
def server() -> Iterator[FakePop3Server]:
    with FakePop3Server({"u": _box(PLAIN, DOTTED, NO_FINAL_CRLF)}) as running:
        yield running


def test_greeting_and_capa_list_the_capabilities(server: FakePop3Server):
    client = _pop(server, password=None)
    assert client.getwelcome() == b"+OK mailarchive fake POP3 server ready"
    assert client.capa() == {
        "TOP": [],
        "UIDL": [],
        "USER": [],
        "RESP-CODES": [],
        "PIPELINING": [],
        "SASL": ["PLAIN"],
    }
    client.quit()


def test_capabilities_option_is_advertised_and_enforced():
    options = FakeServerOptions(capabilities=("UIDL", "SASL PLAIN"))
    with FakePop3Server({"u": _box(PLAIN)}, options=options) as server:
        client = _pop(server, password=None)
        assert client.capa() == {"UIDL": [], "SASL": ["PLAIN"]}
        with pytest.raises(poplib.error_proto, match="USER"):
            client.user("u")
        client.quit()


def test_user_pass_login_then_stat_and_list(server: FakePop3Server):
    client = _pop(server)
    sizes = [len(PLAIN), len(DOTTED), len(NO_FINAL_CRLF)]
    assert client.stat() == (3, sum(sizes))
    _, listing, _ = client.list()
    assert listing == [f"{i} {size}".encode() for i, size in enumerate(sizes, 1)]
    assert client.list(2) == f"+OK 2 {len(DOTTED)}".encode()
    client.quit()


@pytest.mark.parametrize(("user", "password"), [("u", "wrong"), ("nobody", "pw")])
def test_wrong_password_or_user_is_an_auth_error(server: FakePop3Server, user, password):
    client = _pop(server, password=None)
    client.user(user)
    with pytest.raises(poplib.error_proto) as failure:
        client.pass_(password)
    assert failure.value.args[0] == b"-ERR [AUTH] Authentication failed."
    # A failed login locks nothing: the right password still gets in.
    client.user("u")
    assert client.pass_("pw").startswith(b"+OK")
    client.quit()


def test_transaction_commands_are_refused_before_login(server: FakePop3Server):
    raw = RawClient(server)
    raw.send(b"STAT\r\nRETR 1\r\nDELE 1\r\nPASS pw\r\nFOO\r\nCAPA\r\n")
    assert [raw.line() for _ in range(5)] == [
        b"-ERR Not logged in",
        b"-ERR Not logged in",
        b"-ERR Not logged in",
        b"-ERR No username given",
        b"-ERR Unknown command",
    ]
    assert raw.line().startswith(b"+OK")
    assert b"SASL PLAIN\r\n" in raw.wire()
    raw.close()


def test_sasl_plain_initial_response_and_two_step_form(server: FakePop3Server):
    token = base64.b64encode(b"\0u\0pw")
    raw = RawClient(server)
    raw.send(b"AUTH PLAIN " + token + b"\r\n")
    assert raw.line().startswith(b"+OK Logged in")
    raw.send(b"QUIT\r\n")
    assert raw.line().startswith(b"+OK")
    raw.close()

    raw = RawClient(server)
    raw.send(b"AUTH PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send(token + b"\r\n")
    assert raw.line().startswith(b"+OK Logged in")
    raw.send(b"STAT\r\n")
    assert raw.line() == f"+OK 3 {len(PLAIN) + len(DOTTED) + len(NO_FINAL_CRLF)}".encode()
    raw.close()
    auth = [entry for entry in server.commands if entry[1].startswith("AUTH")]
    assert auth == [("u", "AUTH PLAIN ***"), ("u", "AUTH PLAIN ***")]


@pytest.mark.parametrize(
    ("lines", "answer"),
    [
        ([b"AUTH PLAIN " + base64.b64encode(b"\0u\0wrong")], b"-ERR [AUTH] Authentication failed."),
        (
            [b"AUTH PLAIN " + base64.b64encode(b"other\0u\0pw")],
            b"-ERR [AUTH] Authentication failed.",
        ),
        ([b"AUTH PLAIN not-base64!"], b"-ERR [AUTH] Authentication failed."),
        ([b"AUTH PLAIN", b"*"], b"-ERR Authentication cancelled"),
        ([b"AUTH XOAUTH2 dG9rZW4="], b"-ERR Unsupported authentication mechanism"),
    ],
)
def test_sasl_failures(server: FakePop3Server, lines: list[bytes], answer: bytes):
    raw = RawClient(server)
    for line in lines[:-1]:
        raw.send(line + b"\r\n")
        assert raw.line() == b"+ "
    raw.send(lines[-1] + b"\r\n")
    assert raw.line() == answer
    raw.send(b"STAT\r\n")
    assert raw.line() == b"-ERR Not logged in"
    raw.close()


def test_command_log_redacts_passwords_and_names_the_user(server: FakePop3Server):
    client = _pop(server, password=None)
    client.user("u")
    with pytest.raises(poplib.error_proto):
        client.pass_("wrong secret")
    client.user("u")
    client.pass_("pw")
    client.retr(1)
    client.quit()
    assert server.commands == [
        ("u", "USER u"),
        ("u", "PASS ***"),
        ("u", "USER u"),
        ("u", "PASS ***"),
        ("u", "RETR 1"),
        ("u", "QUIT"),
    ]


def test_uidl_is_unique_and_stable_across_sessions():
    mailbox = _box(PLAIN, PLAIN, DOTTED)
    with FakePop3Server({"u": mailbox}) as server:
        first = _pop(server)
        listing = first.uidl()[1]
        first.quit()
        second = _pop(server)
        assert second.uidl()[1] == listing
        assert second.uidl(3) == f"+OK 3 {mailbox.uidls[2]}".encode()
        second.quit()
    digest = hashlib.sha256(PLAIN).hexdigest()[:16]
    assert listing == [f"1 {digest}".encode(), f"2 {digest}-2".encode(), b"3 " + listing[2][2:]]
    assert len(set(mailbox.uidls or [])) == 3


def test_uidls_survive_deletion_and_new_mail_gets_new_ones():
    mailbox = _box(PLAIN, DOTTED)
    with FakePop3Server({"u": mailbox}) as server:
        client = _pop(server)
        dotted_uidl = client.uidl(2).split()[2]
        client.dele(1)
        client.quit()
        mailbox.messages.append(NO_FINAL_CRLF)
        client = _pop(server)
        listing = client.uidl()[1]
        client.quit()
    assert listing[0] == b"1 " + dotted_uidl
    assert listing[1] == b"2 " + hashlib.sha256(NO_FINAL_CRLF).hexdigest()[:16].encode()


def test_invalid_explicit_uidls_are_refused():
    with pytest.raises(ValueError, match="RFC 1939"):
        FakeMailbox("pw", [PLAIN], uidls=["has space"])
    with pytest.raises(ValueError, match="2 UIDLs for 1 messages"):
        FakeMailbox("pw", [PLAIN], uidls=["a", "b"])


def test_retr_returns_the_exact_bytes(server: FakePop3Server):
    client = _pop(server)
    for number, message in ((1, PLAIN), (2, DOTTED)):
        status, lines, octets = client.retr(number)
        assert status == f"+OK {len(message)} octets".encode()
        assert _joined(lines) == message
    client.quit()


def test_dot_stuffing_and_long_lines_on_the_wire():
    # poplib gives up on lines over 2,048 bytes, so read this one from the socket.
    with FakePop3Server({"u": _box(LONG_LINE, DOTTED, NO_FINAL_CRLF)}) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 1\r\nRETR 2\r\nRETR 3\r\n")
        assert raw.line() == f"+OK {len(LONG_LINE)} octets".encode()
        long_wire = raw.wire()
        assert raw.line().startswith(b"+OK")
        dotted_wire = raw.wire()
        assert raw.line().startswith(b"+OK")
        unterminated_wire = raw.wire()
        raw.close()
    assert long_wire == LONG_LINE.replace(b"\r\n.after", b"\r\n..after")
    assert _unstuff(long_wire) == LONG_LINE
    assert dotted_wire == (
        b"From: b@example.org\r\nSubject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\n"
        b"middle . dot\r\n"
    )
    assert _unstuff(dotted_wire) == DOTTED
    # The terminator must start a line, so a missing final CRLF is added, as servers do.
    assert unterminated_wire == NO_FINAL_CRLF + b"\r\n"


def test_top_returns_headers_and_n_body_lines(server: FakePop3Server):
    client = _pop(server)
    assert _joined(client.top(2, 0)[1]) == b"From: b@example.org\r\nSubject: dots\r\n\r\n"
    assert _joined(client.top(2, 2)[1]) == DOTTED[: DOTTED.index(b".\r\nmiddle")]
    assert _joined(client.top(1, 50)[1]) == PLAIN
    client.quit()


def test_dele_then_quit_removes_the_message(server: FakePop3Server):
    client = _pop(server)
    uidls = list(server.mailbox("u").uidls or [])
    client.dele(2)
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.retr(2)
    with pytest.raises(poplib.error_proto, match="deleted"):
        client.list(2)
    with pytest.raises(poplib.error_proto, match="no message 9"):
        client.dele(9)
    assert client.stat() == (2, len(PLAIN) + len(NO_FINAL_CRLF))
    assert client.quit() == b"+OK Logging out (2 messages left)"
    assert server.mailbox("u").messages == [PLAIN, NO_FINAL_CRLF]
    assert server.mailbox("u").uidls == [uidls[0], uidls[2]]


def test_dele_then_dropped_connection_deletes_nothing(server: FakePop3Server):
    client = _pop(server)
    client.dele(1)
    client.dele(2)
    client.close()  # no QUIT: RFC 1939 §6 says the server must not enter UPDATE
    again = _pop(server)  # waits out the first session's lock if the server is slow
    assert again.stat()[0] == 3
    again.quit()
    assert server.mailbox("u").messages == [PLAIN, DOTTED, NO_FINAL_CRLF]


def test_rset_unmarks_deletions(server: FakePop3Server):
    client = _pop(server)
    client.dele(1)
    assert (
        client.rset()
        == f"+OK maildrop has 3 messages ({sum(map(len, (PLAIN, DOTTED, NO_FINAL_CRLF)))} octets)".encode()
    )
    client.quit()
    assert len(server.mailbox("u").messages) == 3


def test_quit_error_applies_no_deletions():
    options = FakeServerOptions(quit_error=True, lock_wait=0)
    with FakePop3Server({"u": _box(PLAIN, DOTTED)}, options=options) as server:
        client = _pop(server)
        client.dele(1)
        with pytest.raises(poplib.error_proto, match="not removed"):
            client.quit()
        assert server.mailbox("u").messages == [PLAIN, DOTTED]
        # The lock was released even though QUIT failed.
        _pop(server).close()


@pytest.mark.parametrize("code", ["IN-USE", "SYS/TEMP", "LOGIN-DELAY"])
def test_login_error_code_follows_a_correct_password(code: str):
    options = FakeServerOptions(login_error_code=code)
    with FakePop3Server({"u": _box(PLAIN)}, options=options) as server:
        client = _pop(server, password=None)
        client.user("u")
        with pytest.raises(poplib.error_proto) as failure:
            client.pass_("pw")
        assert failure.value.args[0].startswith(f"-ERR [{code}] ".encode())
        client.user("u")
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.pass_("wrong")
        client.quit()


def test_pipelined_commands_are_answered_in_order(server: FakePop3Server):
    raw = RawClient(server)
    raw.send(b"USER u\r\nPASS pw\r\nSTAT\r\nUIDL\r\nRETR 2\r\nLIST 1\r\nDELE 3\r\nNOOP\r\nQUIT\r\n")
    assert raw.line() == b"+OK"
    assert raw.line().startswith(b"+OK Logged in")
    assert raw.line() == f"+OK 3 {len(PLAIN) + len(DOTTED) + len(NO_FINAL_CRLF)}".encode()
    assert (
        raw.line()
        == b"+OK 3 messages ("
        + str(len(PLAIN) + len(DOTTED) + len(NO_FINAL_CRLF)).encode()
        + b" octets)"
    )
    assert raw.wire().count(b"\r\n") == 3
    assert raw.line() == f"+OK {len(DOTTED)} octets".encode()
    assert _unstuff(raw.wire()) == DOTTED
    assert raw.line() == f"+OK 1 {len(PLAIN)}".encode()
    assert raw.line() == b"+OK Message 3 marked for deletion"
    assert raw.line() == b"+OK"
    assert raw.line() == b"+OK Logging out (2 messages left)"
    assert raw.reader.read() == b""  # the server closes after QUIT
    raw.close()
    assert [c for _, c in server.commands] == [
        "USER u", "PASS ***", "STAT", "UIDL", "RETR 2", "LIST 1", "DELE 3", "NOOP", "QUIT",
    ]  # fmt: skip


def test_command_line_limit_is_255_octets(server: FakePop3Server):
    raw = RawClient(server)
    longest = b"NOOP " + b"x" * 248 + b"\r\n"
    assert len(longest) == 255
    raw.send(longest + b"NOOP " + b"x" * 249 + b"\r\nCAPA\r\n")
    assert raw.line() == b"-ERR Not logged in"  # accepted as a command (NOOP before login)
    assert raw.line() == b"-ERR Command line too long (max 255 octets)"
    assert raw.line().startswith(b"+OK Capability")  # the session goes on
    raw.close()


def test_second_concurrent_login_gets_in_use():
    options = FakeServerOptions(lock_wait=0)
    with FakePop3Server({"u": _box(PLAIN)}, options=options) as server:
        first = _pop(server)
        second = _pop(server, password=None)
        second.user("u")
        with pytest.raises(poplib.error_proto) as failure:
            second.pass_("pw")
        assert failure.value.args[0] == b"-ERR [IN-USE] Mailbox is locked"
        first.quit()
        second.user("u")
        assert second.pass_("pw").startswith(b"+OK")
        second.quit()


def test_second_login_waits_for_the_lock_up_to_lock_wait():
    options = FakeServerOptions(lock_wait=5)
    with FakePop3Server({"u": _box(PLAIN)}, options=options) as server:
        first = _pop(server)
        timer = threading.Timer(0.3, first.quit)
        timer.start()
        # The lock is held until the timer's QUIT: a login that succeeds must have waited.
        second = _pop(server)
        timer.join()
        assert second.stat()[0] == 1
        second.quit()


def test_drop_after_bytes_cuts_retr_and_deletes_nothing():
    first, second = (
        b"Subject: 1\r\n\r\n" + b"a" * 1000 + b"\r\n",
        b"Subject: 2\r\n\r\n" + b"b" * 1000 + b"\r\n",
    )
    options = FakeServerOptions(drop_after_bytes=1500)
    with FakePop3Server({"u": _box(first, second)}, options=options) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"RETR 1\r\nDELE 1\r\nRETR 2\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.wire() == first
        assert raw.line() == b"+OK Message 1 marked for deletion"
        assert raw.line().startswith(b"+OK")
        partial = raw.reader.read()  # until the server closes the connection
        raw.close()
        assert partial == second[: 1500 - len(first) - 3]
        again = _pop(server)
        again.quit()
        assert server.mailbox("u").messages == [first, second]


def test_idle_client_is_logged_out_without_update():
    options = FakeServerOptions(timeout=0.3, lock_wait=0)
    with FakePop3Server({"u": _box(PLAIN)}, options=options) as server:
        raw = RawClient(server)
        raw.login()
        raw.send(b"DELE 1\r\n")
        assert raw.line().startswith(b"+OK")
        assert raw.reader.read() == b""
        raw.close()
        _pop(server).quit()  # unlocked again
        assert server.mailbox("u").messages == [PLAIN]


def test_error_greeting_closes_the_connection():
    options = FakeServerOptions(greeting="-ERR [SYS/TEMP] Down for maintenance")
    with FakePop3Server({"u": _box(PLAIN)}, options=options) as server:
        with pytest.raises(poplib.error_proto, match="maintenance"):
            poplib.POP3(server.host, server.port, timeout=5)
        assert server.commands == []


def test_many_concurrent_sessions():
    boxes = {
        f"user{i}": _box(PLAIN, f"Subject: {i}\r\n\r\nbody {i}\r\n".encode()) for i in range(40)
    }

    def session(user: str) -> bytes:
        client = _pop(server, user)
        lines = client.retr(2)[1]
        client.dele(1)
        client.quit()
        return _joined(lines)

    with FakePop3Server(boxes) as server, ThreadPoolExecutor(max_workers=40) as pool:
        bodies = list(pool.map(session, boxes))
    assert bodies == [box.messages[0] for box in boxes.values()]
    assert all(len(box.messages) == 1 for box in boxes.values())


def test_stop_cuts_open_sessions_quickly_and_frees_the_port():
    server = FakePop3Server({"u": _box(PLAIN)}).start()
    idle = _pop(server)
    raw = RawClient(server)
    server.stop()
    assert raw.reader.read() == b""
    with pytest.raises((OSError, poplib.error_proto)):
        idle.stat()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1).recv(1)
    server.stop()  # idempotent


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "k.pem", directory / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_implicit_tls_with_a_verified_certificate(certificate: tuple[Path, Path]):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakePop3Server({"u": _box(DOTTED)}, ssl_context=context) as server:
        client_context = ssl.create_default_context(cafile=str(cert))
        client = poplib.POP3_SSL(server.host, server.port, context=client_context, timeout=5)
        assert client.sock.version() is not None
        client.user("u")
        client.pass_("pw")
        assert _joined(client.retr(1)[1]) == DOTTED
        client.quit()
        # A client that does not trust the certificate never gets to talk POP3.
        with pytest.raises(ssl.SSLCertVerificationError):
            poplib.POP3_SSL(
                server.host, server.port, context=ssl.create_default_context(), timeout=5
            )
    assert [c for _, c in server.commands] == ["USER u", "PASS ***", "RETR 1", "QUIT"]
