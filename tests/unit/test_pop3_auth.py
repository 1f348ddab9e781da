"""archive.pop3.auth: the exact lines each mechanism sends, against a scripted server.

Values come from the specifications: RFC 1939 §7 (APOP), RFC 4616 §2 and RFC 5034 §4 (PLAIN,
the initial response and its 255-octet limit), RFC 7628 §3.1 and §3.2.3 (OAUTHBEARER),
RFC 5801 §4 (authzid escaping), Google's XOAUTH2 protocol page and the LOGIN draft.
"""

from __future__ import annotations

import base64
from typing import NoReturn

import pytest

from archive.errors import Pop3AuthError
from archive.pop3 import auth

# RFC 7628 §4.1's bearer token, and Google's example XOAUTH2 user and token.
RFC7628_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
GOOGLE_USER = "someuser@example.com"
GOOGLE_TOKEN = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"


class ScriptedServer:
    """An auth.Channel that answers each status read with the next scripted line."""

    def __init__(self, *replies: bytes) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, bool]] = []

    def send(self, line: str, *, redact: bool = False) -> None:
        self.sent.append((line, redact))

    def status(self, context: str) -> bytes:
        assert self.replies, f"client read a status after {self.sent[-1][0]!r}; none scripted"
        return self.replies.pop(0)

    def fail(self, command: str, status: bytes) -> NoReturn:
        raise Pop3AuthError(f"{command}: {status.decode()}")

    def describe(self) -> str:
        return "pop.example.com:995"

    @property
    def lines(self) -> list[str]:
        return [line for line, _ in self.sent]


def test_apop_digest_is_rfc_1939_example():
    server = ScriptedServer(b"+OK maildrop has 1 message (369 octets)")
    greeting = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
    auth.apop(server, greeting, "mrose", "tanstaaf")
    assert server.sent == [("APOP mrose c4c9334bac560ecc979e58001b3e22fb", True)]
    assert server.replies == []


def test_apop_without_a_timestamp_in_the_greeting_sends_nothing():
    server = ScriptedServer()
    with pytest.raises(Pop3AuthError, match="no APOP timestamp"):
        auth.apop(server, b"+OK POP3 server ready", "mrose", "tanstaaf")
    assert server.sent == []


def test_user_pass_sends_the_password_redacted():
    server = ScriptedServer(b"+OK", b"+OK maildrop locked")
    auth.user_pass(server, "tim", "tanstaaf")
    assert server.sent == [("USER tim", False), ("PASS tanstaaf", True)]


def test_plain_is_an_initial_response_with_an_empty_authzid():
    # RFC 4616 §2: [authzid] NUL authcid NUL passwd; §4's user tim, password tanstaaftanstaaf.
    server = ScriptedServer(b"+OK maildrop locked and ready")
    auth.sasl_plain(server, "tim", "tanstaaftanstaaf")
    assert server.sent == [("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm", True)]
    assert base64.b64decode("AHRpbQB0YW5zdGFhZnRhbnN0YWFm") == b"\x00tim\x00tanstaaftanstaaf"


def test_plain_utf8_credentials_are_encoded_as_utf8():
    server = ScriptedServer(b"+OK")
    auth.sasl_plain(server, "jürgen", "pässword")
    ((line, _),) = server.sent
    assert base64.b64decode(line.removeprefix("AUTH PLAIN ")) == (
        b"\x00j\xc3\xbcrgen\x00p\xc3\xa4ssword"
    )


def test_plain_too_long_for_one_command_line_goes_in_two_steps():
    # RFC 5034 §4 and RFC 2449 §4: a command line is at most 255 octets, CRLF included.
    password = "p" * 200
    server = ScriptedServer(b"+ ", b"+OK")
    auth.sasl_plain(server, "tim", password)
    response = base64.b64encode(b"\x00tim\x00" + password.encode()).decode()
    assert len("AUTH PLAIN " + response) + 2 > 255
    assert server.sent == [("AUTH PLAIN", False), (response, True)]


def test_plain_that_just_fits_stays_one_line():
    # "AUTH PLAIN " + 240 base64 characters + CRLF = 253 octets: within the limit.
    password = "p" * (180 - len("\x00tim\x00"))
    server = ScriptedServer(b"+OK")
    auth.sasl_plain(server, "tim", password)
    ((line, redact),) = server.sent
    assert len(line) + 2 <= 255 and line.startswith("AUTH PLAIN ") and redact


def test_login_answers_the_username_and_password_prompts():
    server = ScriptedServer(b"+ VXNlcm5hbWU6", b"+ UGFzc3dvcmQ6", b"+OK")
    auth.sasl_login(server, "tim", "tanstaaf")
    assert server.sent == [("AUTH LOGIN", False), ("dGlt", True), ("dGFuc3RhYWY=", True)]


def test_xoauth2_is_googles_example_sent_in_two_steps():
    server = ScriptedServer(b"+ ", b"+OK")
    auth.xoauth2(server, GOOGLE_USER, GOOGLE_TOKEN)
    assert server.sent == [
        ("AUTH XOAUTH2", False),
        (
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbG"
            "NrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==",
            True,
        ),
    ]


def test_xoauth2_error_challenge_is_answered_empty_and_reported_without_the_token():
    error = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"https://mail"}')
    server = ScriptedServer(b"+ ", b"+ " + error, b"-ERR [AUTH] invalid credentials")
    with pytest.raises(Pop3AuthError, match="XOAUTH2 refused: status 401, scope https://mail") as e:
        auth.xoauth2(server, GOOGLE_USER, GOOGLE_TOKEN)
    assert server.sent[2] == ("", False)
    assert GOOGLE_TOKEN not in str(e.value)


def test_oauthbearer_gs2_header_and_kvpairs():
    # RFC 7628 §3.1: "n," gs2 header with a=authzid, then auth=Bearer <token> between %x01.
    server = ScriptedServer(b"+OK")
    auth.oauthbearer(server, "user@example.com", RFC7628_TOKEN)
    ((line, redact),) = server.sent
    assert redact and line.startswith("AUTH OAUTHBEARER ")
    assert base64.b64decode(line.removeprefix("AUTH OAUTHBEARER ")) == (
        b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )


def test_oauthbearer_escapes_comma_and_equals_in_the_authzid():
    server = ScriptedServer(b"+OK")
    auth.oauthbearer(server, "a,b=c", "t")
    ((line, _),) = server.sent
    decoded = base64.b64decode(line.removeprefix("AUTH OAUTHBEARER "))
    assert decoded == b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01"


def test_oauthbearer_error_challenge_gets_the_dummy_x01_response():
    # RFC 7628 §3.2.3: after an error challenge the client sends %x01, base64 "AQ==".
    error = base64.b64encode(b'{"status":"invalid_token"}')
    server = ScriptedServer(b"+ " + error, b"-ERR authentication failed")
    with pytest.raises(Pop3AuthError, match="OAUTHBEARER refused: status invalid_token"):
        auth.oauthbearer(server, "user@example.com", RFC7628_TOKEN)
    assert server.sent[1] == ("AQ==", False)


def test_ok_after_an_error_challenge_is_not_taken_for_success():
    server = ScriptedServer(b"+ ", b"+ e30=", b"+OK")
    with pytest.raises(Pop3AuthError, match="ambiguously"):
        auth.xoauth2(server, GOOGLE_USER, GOOGLE_TOKEN)


def test_ok_before_the_last_credential_is_refused():
    server = ScriptedServer(b"+ VXNlcm5hbWU6", b"+OK")
    with pytest.raises(Pop3AuthError, match="accepted before all credentials"):
        auth.sasl_login(server, "tim", "tanstaaf")


def test_err_to_the_auth_command_goes_to_the_channels_failure():
    server = ScriptedServer(b"-ERR [AUTH] mechanism not supported")
    with pytest.raises(Pop3AuthError, match=r"AUTH PLAIN: -ERR \[AUTH\] mechanism"):
        auth.sasl_plain(server, "tim", "tanstaaf")


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\0b"])
def test_arguments_with_cr_lf_or_nul_are_refused(bad):
    with pytest.raises(Pop3AuthError, match="CR, LF or NUL"):
        auth.check_argument(bad, "username")


def test_ordinary_arguments_pass():
    auth.check_argument("tim@example.com", "username")
