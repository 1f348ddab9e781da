"""SASL LOGIN, XOAUTH2, OAUTHBEARER and APOP on the fake POP3 server, over raw sockets."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator

import pytest

from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.integration.test_fakeserver import PLAIN, RawClient

TOKEN = "ya29." + "t" * 45_000  # tokens run to kilobytes; the payload stays under 64 KiB
CAPS = ("UIDL", "USER", "SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER")
OK_LOGIN = b"+OK Logged in, maildrop has 1 messages"
AUTH_FAILED = b"-ERR [AUTH] Authentication failed."


def _b64(data: str) -> bytes:
    return base64.b64encode(data.encode())


def xoauth2(user: str = "u", token: str = TOKEN) -> bytes:
    return _b64(f"user={user}\x01auth=Bearer {token}\x01\x01")


def oauthbearer(user: str | None = "u", token: str = TOKEN) -> bytes:
    authzid = f"a={user}" if user is not None else ""
    return _b64(f"n,{authzid},\x01host=pop.example.org\x01auth=Bearer {token}\x01\x01")


def _server(**options: object) -> FakePop3Server:
    boxes = {
        "u": FakeMailbox("pw", [PLAIN], oauth_token=TOKEN),
        "v": FakeMailbox("pw2", [PLAIN, PLAIN], oauth_token="other-token"),
    }
    return FakePop3Server(boxes, options=FakeServerOptions(capabilities=CAPS, **options))  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[FakePop3Server]:
    with _server() as running:
        yield running


def _auth_log(server: FakePop3Server) -> list[tuple[str, str]]:
    return [entry for entry in server.commands if entry[1].split()[0] in ("AUTH", "APOP")]


def test_oauth_token_is_kept_out_of_repr():
    box = FakeMailbox("secret", [PLAIN], oauth_token="tok-123")
    assert box.oauth_token == "tok-123"
    assert "tok-123" not in repr(box) and "secret" not in repr(box)
    assert FakeMailbox("pw", [PLAIN]).oauth_token is None


def test_sasl_login_two_step_and_initial_response(server: FakePop3Server):
    raw = RawClient(server)
    raw.send(b"AUTH LOGIN\r\n")
    assert raw.line() == b"+ VXNlcm5hbWU6"  # "Username:"
    raw.send(_b64("u") + b"\r\n")
    assert raw.line() == b"+ UGFzc3dvcmQ6"  # "Password:"
    raw.send(_b64("pw") + b"\r\n")
    assert raw.line().startswith(OK_LOGIN)
    raw.close()

    raw = RawClient(server)
    raw.send(b"AUTH LOGIN " + _b64("v") + b"\r\n")
    assert raw.line() == b"+ UGFzc3dvcmQ6"
    raw.send(_b64("pw2") + b"\r\nSTAT\r\n")
    assert raw.line().startswith(b"+OK Logged in, maildrop has 2 messages")
    assert raw.line() == f"+OK 2 {2 * len(PLAIN)}".encode()
    raw.close()
    assert _auth_log(server) == [("u", "AUTH LOGIN ***"), ("v", "AUTH LOGIN ***")]


@pytest.mark.parametrize(
    ("user", "password"), [(_b64("u"), _b64("wrong")), (_b64("nobody"), _b64("pw")), (b"!!", b"")]
)
def test_sasl_login_failures(server: FakePop3Server, user: bytes, password: bytes):
    raw = RawClient(server)
    raw.send(b"AUTH LOGIN\r\n" + user + b"\r\n")
    assert raw.line() == b"+ VXNlcm5hbWU6"
    assert raw.line() == b"+ UGFzc3dvcmQ6"
    raw.send(password + b"\r\nSTAT\r\n")
    assert raw.line() == AUTH_FAILED
    assert raw.line() == b"-ERR Not logged in"
    raw.close()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_two_step_form_with_a_large_token(server: FakePop3Server, mechanism: str):
    payload = xoauth2() if mechanism == "XOAUTH2" else oauthbearer()
    assert 255 < len(payload) < 64 * 1024  # too long for a command line (RFC 2449 §4)
    raw = RawClient(server)
    raw.send(f"AUTH {mechanism}\r\n".encode())
    assert raw.line() == b"+ "
    raw.send(payload + b"\r\nSTAT\r\n")
    assert raw.line().startswith(OK_LOGIN)
    assert raw.line() == f"+OK 1 {len(PLAIN)}".encode()
    raw.close()
    assert _auth_log(server) == [("u", f"AUTH {mechanism} ***")]
    assert TOKEN not in repr(server.commands)


def test_a_sasl_line_over_64_kib_fails_and_the_session_goes_on(server: FakePop3Server):
    raw = RawClient(server)
    raw.send(b"AUTH XOAUTH2\r\n")
    assert raw.line() == b"+ "
    payload = xoauth2(token="t" * 60_000)
    assert len(payload) > 64 * 1024
    raw.send(payload + b"\r\nNOOP\r\n")
    assert raw.line() == AUTH_FAILED
    assert raw.line() == b"-ERR Not logged in"
    raw.close()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_initial_response(mechanism: str):
    short = "short-token"
    box = FakeMailbox("pw", [PLAIN], oauth_token=short)
    options = FakeServerOptions(capabilities=CAPS)
    with FakePop3Server({"u": box}, options=options) as server:
        payload = xoauth2(token=short) if mechanism == "XOAUTH2" else oauthbearer(token=short)
        raw = RawClient(server)
        raw.send(f"AUTH {mechanism} ".encode() + payload + b"\r\n")
        assert raw.line().startswith(OK_LOGIN)
        raw.close()
        assert server.login_count("u") == 1
        assert _auth_log(server) == [("u", f"AUTH {mechanism} ***")]


def test_oauthbearer_without_authzid_takes_the_user_from_the_token(server: FakePop3Server):
    raw = RawClient(server)
    raw.send(b"AUTH OAUTHBEARER\r\n")
    assert raw.line() == b"+ "
    raw.send(oauthbearer(user=None, token="other-token") + b"\r\n")
    assert raw.line().startswith(b"+OK Logged in, maildrop has 2 messages")
    raw.close()
    assert server.login_count("v") == 1 and server.login_count("u") == 0


@pytest.mark.parametrize(
    ("mechanism", "payload", "answer"),
    [
        ("XOAUTH2", xoauth2(token="expired"), b""),
        ("XOAUTH2", xoauth2(user="v"), b"whatever"),  # u's token for v
        ("XOAUTH2", xoauth2(user="nobody"), b""),
        ("OAUTHBEARER", oauthbearer(token="expired"), b"AQ=="),
        ("OAUTHBEARER", oauthbearer(user=None, token="nobody's"), b"AQ=="),
    ],
)
def test_wrong_token_gets_a_json_challenge_then_auth_error(
    server: FakePop3Server, mechanism: str, payload: bytes, answer: bytes
):
    raw = RawClient(server)
    raw.send(f"AUTH {mechanism}\r\n".encode())
    assert raw.line() == b"+ "
    raw.send(payload + b"\r\n")
    challenge = raw.line()
    assert challenge.startswith(b"+ ")
    assert json.loads(base64.b64decode(challenge[2:])) == {
        "status": "401",
        "schemes": "bearer",
        "scope": "https://mail.google.com/",
    }
    raw.send(answer + b"\r\nSTAT\r\n")
    assert raw.line() == AUTH_FAILED
    assert raw.line() == b"-ERR Not logged in"
    raw.close()
    assert server.login_count("u") == server.login_count("v") == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"not base64!",
        _b64("user=u\x01auth=Bearer tok"),  # no final ^A^A
        _b64("user=u\x01auth=Basic dXNlcg==\x01\x01"),
        _b64("auth=Bearer tok\x01\x01"),  # XOAUTH2 needs user=
    ],
)
def test_malformed_xoauth2_is_refused_without_challenge(server: FakePop3Server, payload: bytes):
    raw = RawClient(server)
    raw.send(b"AUTH XOAUTH2\r\n")
    assert raw.line() == b"+ "
    raw.send(payload + b"\r\n")
    assert raw.line() == AUTH_FAILED
    raw.close()


@pytest.mark.parametrize(
    "lines",
    [
        [b"AUTH XOAUTH2", b"*"],
        [b"AUTH XOAUTH2", xoauth2(token="bad"), b"*"],  # at the error challenge
        [b"AUTH OAUTHBEARER", b"*"],
        [b"AUTH LOGIN", b"*"],
        [b"AUTH LOGIN", _b64("u"), b"*"],
    ],
)
def test_star_cancels_at_any_challenge(server: FakePop3Server, lines: list[bytes]):
    raw = RawClient(server)
    for line in lines:
        raw.send(line + b"\r\n")
        if line != b"*":
            assert raw.line().startswith(b"+ ")
    assert raw.line() == b"-ERR Authentication cancelled"
    raw.send(b"STAT\r\n")
    assert raw.line() == b"-ERR Not logged in"
    raw.close()


def test_two_step_only_refuses_an_initial_response_like_microsoft_365():
    with _server(oauth_two_step_only=True) as server:
        raw = RawClient(server)
        raw.send(b"AUTH XOAUTH2 " + xoauth2(token="x") + b"\r\n")
        assert raw.line() == b"-ERR Initial response not supported for this mechanism"
        raw.send(b"STAT\r\nAUTH XOAUTH2\r\n")
        assert raw.line() == b"-ERR Not logged in"
        assert raw.line() == b"+ "
        raw.send(xoauth2() + b"\r\n")
        assert raw.line().startswith(OK_LOGIN)
        raw.close()
        # PLAIN keeps its initial response: only the OAuth mechanisms are two-step.
        raw = RawClient(server)
        raw.send(b"AUTH PLAIN " + base64.b64encode(b"\0v\0pw2") + b"\r\n")
        assert raw.line().startswith(b"+OK Logged in")
        raw.close()
        assert _auth_log(server) == [
            ("", "AUTH XOAUTH2 ***"),
            ("u", "AUTH XOAUTH2 ***"),
            ("v", "AUTH PLAIN ***"),
        ]


@pytest.mark.parametrize("mechanism", ["LOGIN", "XOAUTH2", "OAUTHBEARER", "CRAM-MD5"])
def test_mechanisms_not_advertised_are_refused(mechanism: str):
    with FakePop3Server({"u": FakeMailbox("pw", [PLAIN], oauth_token=TOKEN)}) as server:
        raw = RawClient(server)
        raw.send(f"AUTH {mechanism}\r\n".encode())
        assert raw.line() == b"-ERR Unsupported authentication mechanism"
        raw.close()


def test_capa_advertises_the_configured_mechanisms(server: FakePop3Server):
    raw = RawClient(server)
    raw.send(b"CAPA\r\n")
    assert raw.line().startswith(b"+OK")
    assert raw.wire() == b"UIDL\r\nUSER\r\nSASL PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n"
    raw.close()


def _apop_timestamp(greeting: bytes) -> str:
    match = re.fullmatch(rb"\+OK .* (<\d+\.\d+@[^>]+>)", greeting)
    assert match is not None, greeting
    return match.group(1).decode()


def test_apop_login_with_the_greeting_timestamp():
    options = FakeServerOptions(apop=True)
    with FakePop3Server({"u": FakeMailbox("tanstaaf", [PLAIN])}, options=options) as server:
        raw = RawClient(server)
        timestamp = _apop_timestamp(raw.greeting)
        digest = hashlib.md5((timestamp + "tanstaaf").encode()).hexdigest()
        raw.send(f"APOP u {digest}\r\nSTAT\r\n".encode())
        assert raw.line().startswith(OK_LOGIN)
        assert raw.line() == f"+OK 1 {len(PLAIN)}".encode()
        raw.close()

        raw = RawClient(server)
        # Each greeting has its own timestamp, so a replayed digest fails.
        assert _apop_timestamp(raw.greeting) != timestamp
        raw.send(f"APOP u {digest}\r\nAPOP nobody {digest}\r\n".encode())
        assert raw.line() == AUTH_FAILED
        assert raw.line() == AUTH_FAILED
        raw.close()
        assert _auth_log(server) == [("u", "APOP u ***")] * 2 + [("nobody", "APOP nobody ***")]
        assert digest not in repr(server.commands)


def test_without_the_apop_option_there_is_no_timestamp_and_no_apop(server: FakePop3Server):
    raw = RawClient(server)
    assert raw.greeting == b"+OK mailarchive fake POP3 server ready"
    raw.send(b"APOP u 0123456789abcdef0123456789abcdef\r\n")
    assert raw.line() == b"-ERR Unknown command"
    raw.close()
