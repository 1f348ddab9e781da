"""The Dovecot test server itself, checked with independent clients: poplib and raw sockets."""

from __future__ import annotations

import os
import poplib
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.dovecot import Dovecot, make_self_signed_cert, running_dovecot

if TYPE_CHECKING:
    from tests.support.fixtures_dovecot import NewUser

pytestmark = pytest.mark.dovecot

TIMEOUT = 10


def _message(subject: str, body: bytes = b"body\n") -> bytes:
    return b"From: a@example.org\nSubject: " + subject.encode() + b"\n\n" + body


def _context(dovecot: Dovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(dovecot.tls.ca_file))


def _session(
    dovecot: Dovecot, user: str, password: str, timeout: float = TIMEOUT
) -> poplib.POP3_SSL:
    pop = poplib.POP3_SSL(
        dovecot.host, dovecot.pop3s_port, context=_context(dovecot), timeout=timeout
    )
    try:
        pop.user(user)
        pop.pass_(password)
    except BaseException:
        pop.close()
        raise
    return pop


class RawSession:
    """USER/PASS and RETR over implicit TLS, keeping every byte the server sends."""

    def __init__(self, dovecot: Dovecot, user: str, password: str) -> None:
        sock = socket.create_connection((dovecot.host, dovecot.pop3s_port), timeout=TIMEOUT)
        self.sock = _context(dovecot).wrap_socket(sock, server_hostname=dovecot.host)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"+OK")
        self.command(f"USER {user}")
        self.command(f"PASS {password}")

    def command(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        status = self.file.readline()
        assert status.startswith(b"+OK"), f"{line.split()[0]}: {status!r}"
        return status

    def retr_lines(self, number: int) -> list[bytes]:
        """The response's lines as sent (LF-terminated, still dot-stuffed), without the
        terminating "." line."""
        self.command(f"RETR {number}")
        lines = []
        while (line := self.file.readline()) != b".\r\n":
            assert line, "connection closed inside a multi-line response"
            lines.append(line)
        return lines

    def retr(self, number: int) -> bytes:
        """The message as an RFC 1939 §3 client sees it: lines dot-unstuffed, CRLFs kept."""
        return b"".join(
            line[1:] if line.startswith(b".") else line for line in self.retr_lines(number)
        )

    def quit(self) -> None:
        self.command("QUIT")
        self.sock.close()


def _dotted_body() -> bytes:
    # Lines of every length up to 96, each starting with ".", ~40 KB: dots and line ends
    # land on both sides of Dovecot's 4096-byte send chunks.
    return b"".join(b"." + b"y" * (i % 97) + (b"\n" if i % 2 else b"\r\n") for i in range(800))


TRICKY = {
    "crlf": b"Subject: crlf\r\n\r\nbody\r\n",
    "lf": b"Subject: lf\n\nbody\n",
    "mixed": b"Subject: mixed\r\n\nlf line\ncrlf line\r\nlf again\n",
    "bare-cr": b"Subject: cr\r\n\r\na\rb\r\n\rc\r\n",
    "cr-before-crlf": b"Subject: crcr\r\n\r\nx\r\r\ny\n\n\r\n",
    "trailing-bare-cr": b"Subject: tcr\n\nend\r",
    "no-trailing-newline": b"Subject: nonl\r\n\r\nlast line",
    "header-only-no-newline": b"Subject: only",
    "empty": b"",
    "dot-lines-crlf": b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n. \r\n...\r\n",
    "dot-lines-lf": b"Subject: dots\n\n.\n..\n.x\n",
    "dot-after-bare-cr": b"Subject: d\r\n\r\na\r.b\r\n",
    "dot-last-no-newline": b"Subject: d\n\n.",
    "nul-and-8bit": b"Subject: bin\r\n\r\n\x00\xff\xe4\x80\r\n",
    "long-line": b"Subject: long\r\n\r\n" + b"x" * 20000 + b"\r\n.\r\n",
    "dots-across-chunks": b"Subject: chunks\n\n" + _dotted_body(),
}


def test_user_pass_over_verified_implicit_tls(dovecot: Dovecot, dovecot_user: NewUser):
    messages = [_message("one"), _message("two", b"a\nb\n")]
    user, password = dovecot_user(messages)
    pop = _session(dovecot, user, password)
    assert isinstance(pop.sock, ssl.SSLSocket)
    assert ("IP Address", "127.0.0.1") in pop.sock.getpeercert()["subjectAltName"]
    # STAT counts octets with CRLF line ends (RFC 1939 §5), which for LF-terminated
    # messages is exactly what RETR sends.
    assert pop.stat() == (2, sum(len(dovecot.served_bytes(m)) for m in messages))
    assert pop.quit().startswith(b"+OK")


def test_stls_upgrades_the_plain_port(dovecot: Dovecot, dovecot_user: NewUser):
    user, password = dovecot_user([_message("stls")])
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=TIMEOUT)
    assert "STLS" in pop.capa()
    assert pop.stls(context=_context(dovecot)).startswith(b"+OK")
    assert isinstance(pop.sock, ssl.SSLSocket)
    pop.user(user)
    pop.pass_(password)
    assert pop.stat()[0] == 1
    pop.quit()


def test_certificate_is_refused_without_its_ca(dovecot: Dovecot, tmp_path: Path):
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL(
            dovecot.host,
            dovecot.pop3s_port,
            context=ssl.create_default_context(),
            timeout=TIMEOUT,
        )
    other = make_self_signed_cert(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL(
            dovecot.host,
            dovecot.pop3s_port,
            context=ssl.create_default_context(cafile=str(other.ca_file)),
            timeout=TIMEOUT,
        )
    plain = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=TIMEOUT)
    with pytest.raises(ssl.SSLCertVerificationError):
        plain.stls(context=ssl.create_default_context())
    plain.file.close()  # the failed handshake already closed the socket


def test_certificate_names_localhost_and_loopback(dovecot: Dovecot):
    def handshake(server_hostname: str) -> bytes:
        sock = socket.create_connection((dovecot.host, dovecot.pop3s_port), timeout=TIMEOUT)
        with _context(dovecot).wrap_socket(sock, server_hostname=server_hostname) as tls:
            return tls.recv(100)

    assert handshake("localhost").startswith(b"+OK")
    assert handshake("127.0.0.1").startswith(b"+OK")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake("mail.example.org")
    # Stricter clients (Python >= 3.13 sets VERIFY_X509_STRICT by default) accept it too.
    ca = str(dovecot.tls.ca_file)
    result = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", ca, ca],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_capa_lists_pipelining_and_sasl_plain(dovecot: Dovecot, dovecot_user: NewUser):
    plain = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=TIMEOUT)
    before_login = plain.capa()
    plain.quit()
    assert "PIPELINING" in before_login
    assert {"PLAIN", "LOGIN"} <= set(before_login["SASL"])
    assert {"STLS", "UIDL", "RESP-CODES", "USER"} <= set(before_login)

    user, password = dovecot_user()
    pop = _session(dovecot, user, password)
    after_login = pop.capa()
    pop.quit()
    assert "PIPELINING" in after_login


def test_delivered_messages_are_listed_with_uidls(dovecot: Dovecot, dovecot_user: NewUser):
    messages = [_message(f"m{i}", b"x\n" * i) for i in range(1, 4)]
    user, password = dovecot_user(messages)
    assert dovecot.message_count(user) == 3
    pop = _session(dovecot, user, password)
    sizes = [line.split() for line in pop.list()[1]]
    uidls = [line.split() for line in pop.uidl()[1]]
    retrieved = [b"\r\n".join(pop.retr(i)[1]) + b"\r\n" for i in (1, 2, 3)]
    pop.quit()

    served = [dovecot.served_bytes(m) for m in messages]
    assert sizes == [[str(i).encode(), str(len(m)).encode()] for i, m in enumerate(served, 1)]
    assert [n for n, _ in uidls] == [b"1", b"2", b"3"]
    # pop3_uidl_format = %08Xu%08Xv: the UID, then the UIDVALIDITY, 8 hex digits each
    # (lower case, despite the X).
    assert all(re.fullmatch(rb"[0-9a-f]{16}", uidl) for _, uidl in uidls)
    assert [int(uidl[:8], 16) for _, uidl in uidls] == [1, 2, 3]
    assert len({uidl[8:] for _, uidl in uidls}) == 1
    # Delivery order is POP3 order.
    assert retrieved == served


def test_served_bytes_match_retr(dovecot: Dovecot, dovecot_user: NewUser):
    user, password = dovecot_user(TRICKY.values())
    raw = RawSession(dovecot, user, password)
    received = {name: raw.retr(i) for i, name in enumerate(TRICKY, 1)}
    raw.quit()
    assert received == {name: dovecot.served_bytes(m) for name, m in TRICKY.items()}
    # The rules themselves, spelled out on a few of them:
    assert received["lf"] == b"Subject: lf\r\n\r\nbody\r\n"
    assert received["crlf"] == TRICKY["crlf"]
    assert received["bare-cr"] == TRICKY["bare-cr"]
    assert received["cr-before-crlf"] == b"Subject: crcr\r\n\r\nx\r\r\ny\r\n\r\n\r\n"
    assert received["trailing-bare-cr"] == b"Subject: tcr\r\n\r\nend\r\r\n"
    assert received["no-trailing-newline"] == TRICKY["no-trailing-newline"] + b"\r\n"
    assert received["empty"] == b"\r\n"
    assert received["dot-lines-lf"] == b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n"
    assert received["dot-last-no-newline"] == b"Subject: d\r\n\r\n.\r\n"


def test_dots_are_stuffed_except_on_the_first_line(dovecot: Dovecot, dovecot_user: NewUser):
    user, password = dovecot_user([b"Subject: s\n\n.\n..x\n", b".first\r\nsecond\r\n"])
    raw = RawSession(dovecot, user, password)
    stuffed, first_line = raw.retr_lines(1), raw.retr_lines(2)
    raw.quit()
    assert stuffed == [b"Subject: s\r\n", b"\r\n", b"..\r\n", b"...x\r\n"]
    # RFC 1939 §3 wants this first line sent as "..first": Dovecot 2.3 sends it as is,
    # so a client reads "first". served_bytes() refuses to guess.
    assert first_line == [b".first\r\n", b"second\r\n"]
    with pytest.raises(ValueError, match="first line"):
        dovecot.served_bytes(b".first\r\nsecond\r\n")


def test_dele_then_quit_deletes(dovecot: Dovecot, dovecot_user: NewUser):
    messages = [_message(f"d{i}") for i in range(3)]
    user, password = dovecot_user(messages)
    pop = _session(dovecot, user, password)
    pop.dele(1)
    pop.dele(3)
    assert pop.quit().startswith(b"+OK")
    assert dovecot.message_count(user) == 1
    again = _session(dovecot, user, password)
    assert again.stat()[0] == 1
    assert b"\r\n".join(again.retr(1)[1]) + b"\r\n" == dovecot.served_bytes(messages[1])
    again.quit()


def test_dele_without_quit_deletes_nothing(dovecot: Dovecot, dovecot_user: NewUser):
    user, password = dovecot_user([_message("k1"), _message("k2")])
    pop = _session(dovecot, user, password)
    assert pop.dele(1).startswith(b"+OK")
    assert pop.stat()[0] == 1
    pop.close()  # drop the connection: no QUIT, so no UPDATE state (RFC 1939 §6)
    again = _session(dovecot, user, password)
    assert again.stat()[0] == 2
    again.quit()
    assert dovecot.message_count(user) == 2


def test_wrong_password_is_refused_without_lockout(dovecot: Dovecot, dovecot_user: NewUser):
    user, password = dovecot_user([_message("pw")])
    # Repeated failures from one IP: with the anvil penalty off, none of these waits.
    for attempt in ("wrong", "also-wrong", password.upper()):
        pop = poplib.POP3_SSL(
            dovecot.host, dovecot.pop3s_port, context=_context(dovecot), timeout=TIMEOUT
        )
        pop.user(user)
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
            pop.pass_(attempt)
        pop.close()
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        _session(dovecot, "nobody-by-this-name", password)
    pop = _session(dovecot, user, password)
    assert pop.stat()[0] == 1
    pop.quit()


def test_dovecot_user_gives_distinct_users(dovecot: Dovecot, dovecot_user: NewUser):
    first, second = dovecot_user([_message("a")]), dovecot_user()
    assert first[0] != second[0] and first[1] != second[1]
    assert (dovecot.message_count(first[0]), dovecot.message_count(second[0])) == (1, 0)
    with pytest.raises(ValueError, match="already exists"):
        dovecot.add_user(first[0], "x")
    with pytest.raises(ValueError):
        dovecot.add_user("bad:name", "x")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        _session(dovecot, first[0], second[1])


@pytest.fixture(scope="module")
def capped_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A second Dovecot that allows one connection per user and IP."""
    with running_dovecot(
        tmp_path_factory.mktemp("dovecot-capped"), max_userip_connections=1
    ) as server:
        yield server


def test_max_userip_connections_refuses_a_second_session(capped_dovecot: Dovecot):
    capped_dovecot.add_user("capped", "pw", [_message("c")])
    first = _session(capped_dovecot, "capped", "pw")
    capped_dovecot.wait_sessions("capped", 1)
    with pytest.raises(poplib.error_proto, match="Maximum number of connections"):
        _session(capped_dovecot, "capped", "pw")
    first.quit()
    capped_dovecot.wait_sessions("capped", 0)
    after = _session(capped_dovecot, "capped", "pw")
    assert after.stat()[0] == 1
    after.quit()


@pytest.mark.skipif(
    os.environ.get("MAILARCHIVE_SLOW_TESTS") != "1",
    reason="Dovecot waits 10 s (its fixed POP3 session dotlock timeout) before [IN-USE]; "
    "set MAILARCHIVE_SLOW_TESTS=1 to run",
)
def test_lock_session_gives_in_use(tmp_path_factory: pytest.TempPathFactory):
    with running_dovecot(tmp_path_factory.mktemp("dovecot-lock"), lock_session=True) as locking:
        locking.add_user("locked", "pw", [_message("l")])
        holder = _session(locking, "locked", "pw")
        with pytest.raises(poplib.error_proto, match=r"-ERR \[IN-USE\]"):
            _session(locking, "locked", "pw", timeout=30)
        holder.quit()
        after = _session(locking, "locked", "pw")
        assert after.stat()[0] == 1
        after.quit()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands work to other users")
def test_root_refuses_a_directory_its_service_users_cannot_reach(tmp_path: Path):
    # pytest's tmp tree is 0700 as root: Dovecot would fail in obscure ways much later.
    with pytest.raises(RuntimeError, match="not traversable"):
        Dovecot(tmp_path / "dovecot").start()
    assert not (tmp_path / "dovecot" / "dovecot.conf").exists()
