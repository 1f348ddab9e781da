"""The POP3 client against the scriptable fake server: SASL and OAuth, APOP, response codes,
and servers that misbehave in ways Dovecot cannot show."""

from __future__ import annotations

import pytest

from archive.errors import (
    Pop3AuthError,
    Pop3ConnectionError,
    Pop3ProtocolError,
    Pop3ServerError,
    Pop3TemporaryError,
)
from archive.pop3.client import Endpoint, Pop3Client
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.support.mail import make_message

OAUTH_CAPS = (
    "TOP",
    "UIDL",
    "USER",
    "RESP-CODES",
    "PIPELINING",
    "SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER",
)
TOKEN = "ya29." + "t" * 1500  # real access tokens run to kilobytes


def _server(options: FakeServerOptions | None = None, **boxes: FakeMailbox) -> FakePop3Server:
    return FakePop3Server(boxes or {"u": FakeMailbox("pw", [make_message("x")])}, options=options)


def _connect(server: FakePop3Server, timeout: float = 10, **endpoint) -> Pop3Client:
    return Pop3Client.connect(
        Endpoint(server.host, server.port, "none", None, timeout, "mailbox 'fake'", **endpoint)
    )


def _oauth_box() -> FakeMailbox:
    return FakeMailbox("pw", [make_message("oauth")], oauth_token=TOKEN)


@pytest.mark.parametrize("method", ["xoauth2", "oauthbearer"])
@pytest.mark.parametrize("two_step_only", [False, True])
def test_oauth_login(method, two_step_only):
    options = FakeServerOptions(capabilities=OAUTH_CAPS, oauth_two_step_only=two_step_only)
    with _server(options, u=_oauth_box()) as server:
        client = _connect(server)
        client.login("u", TOKEN, method)
        assert len(client.uidl()) == 1
        client.quit()
        logged = [command for _, command in server.commands]
    assert not any(TOKEN in command for command in logged)


@pytest.mark.parametrize("method", ["xoauth2", "oauthbearer"])
def test_bad_token_challenge_is_a_failure(method):
    with _server(FakeServerOptions(capabilities=OAUTH_CAPS), u=_oauth_box()) as server:
        client = _connect(server)
        with pytest.raises(Pop3AuthError) as refused:
            client.login("u", "expired-token", method)
        client.close()
    message = str(refused.value)
    assert "401" in message and "mailbox 'fake'" in message
    assert "expired-token" not in message and not refused.value.transient


@pytest.mark.parametrize("method", ["login", "plain", "user"])
def test_password_methods(method):
    options = FakeServerOptions(capabilities=OAUTH_CAPS)
    with _server(options) as server:
        client = _connect(server)
        client.login("u", "pw", method)
        client.quit()
        client = _connect(server)
        with pytest.raises(Pop3AuthError):
            client.login("u", "wrong", method)
        client.close()


def test_apop_only_when_asked():
    with _server(FakeServerOptions(apop=True)) as server:
        client = _connect(server)
        client.login("u", "pw", "apop")
        client.quit()
        client = _connect(server)
        client.login("u", "pw")  # auto never picks APOP
        client.quit()
        verbs = [command.split()[0] for _, command in server.commands]
    assert verbs.count("APOP") == 1
    with _server() as server:
        client = _connect(server)
        with pytest.raises(Pop3AuthError, match="no APOP timestamp"):
            client.login("u", "pw", "apop")
        client.close()


@pytest.mark.parametrize("bad", ["pw\r\nDELE 1", "pw\nx", "p\0w"])
def test_line_breaks_in_credentials_never_sent(bad):
    with _server() as server:
        client = _connect(server)
        with pytest.raises(Pop3AuthError, match="CR, LF or NUL"):
            client.login("u", bad)
        with pytest.raises(Pop3AuthError, match="CR, LF or NUL"):
            client.login("u\r\nQUIT", "pw")
        client.close()
        sent = [command for _, command in server.commands]
    assert sent == ["CAPA"]


@pytest.mark.parametrize(
    ("code", "error", "transient"),
    [
        ("IN-USE", Pop3TemporaryError, True),
        ("LOGIN-DELAY", Pop3TemporaryError, True),
        ("SYS/TEMP", Pop3TemporaryError, True),
        ("SYS/PERM", Pop3ServerError, False),
        ("AUTH", Pop3AuthError, False),
    ],
)
def test_response_codes_become_error_classes(code, error, transient):
    with _server(FakeServerOptions(login_error_code=code)) as server:
        client = _connect(server)
        with pytest.raises(error) as raised:
            client.login("u", "pw")
        client.close()
    assert raised.value.transient is transient and code in str(raised.value)


def test_capabilities_login_delay_and_expire():
    options = FakeServerOptions(login_delay=300, expire="0")
    with _server(options) as server:
        client = _connect(server)
        client.login("u", "pw")
        assert (client.login_delay, client.expires_on_retrieval) == (300, True)
        client.quit()


def test_listing_uses_real_sizes_on_retrieval():
    raw = make_message("sized", "body\r\n" * 100)
    with _server(FakeServerOptions(list_size_delta=-50), u=FakeMailbox("pw", [raw])) as server:
        client = _connect(server)
        client.login("u", "pw")
        (listed,) = client.listing()
        (message,) = list(client.retrieve([listed.number]))
        client.quit()
    assert listed.size == len(raw) - 50
    assert (message.size, message.read()) == (len(raw), raw)


def test_trickling_server_still_gives_exact_bytes():
    raws = [make_message(f"slow {i}", ".dot\r\n" + "s" * 3000) for i in range(3)]
    options = FakeServerOptions(trickle=(7, 0.0))
    with _server(options, u=FakeMailbox("pw", raws)) as server:
        client = _connect(server)
        client.login("u", "pw")
        got = [m.read() for m in client.retrieve([item.number for item in client.listing()])]
        client.quit()
    assert got == raws


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        ("garbage_status", Pop3ProtocolError, "unexpected response to RETR"),
        ("oversized_status", Pop3ProtocolError, "longer than"),
        ("endless_retr", Pop3ProtocolError, "exceeds"),
        ("stall_retr", Pop3ConnectionError, "timed out"),
    ],
)
def test_broken_retrieval_fails_clearly(fault, error, match):
    with _server(FakeServerOptions(fault=fault, timeout=5)) as server:
        client = _connect(server, timeout=1, max_response_bytes=1 << 20)
        client.login("u", "pw")
        with pytest.raises(error, match=match) as raised:
            for message in client.retrieve([1]):
                message.close()
        client.close()
    assert "mailbox 'fake'" in str(raised.value)


def test_oversized_listing_line_fails_clearly():
    with _server(FakeServerOptions(fault="oversized_listing_line")) as server:
        client = _connect(server)
        client.login("u", "pw")
        with pytest.raises(Pop3ProtocolError, match="too long"):
            client.listing()
        client.close()


def test_top_is_not_sent_when_capa_lacks_it():
    no_top = FakeServerOptions(capabilities=("UIDL", "USER"))
    with _server(no_top) as server:
        client = _connect(server)
        client.login("u", "pw", "user")
        with pytest.raises(Pop3ServerError, match="does not offer TOP"):
            client.top(1)
        client.quit()
    assert not any(command.startswith("TOP") for _, command in server.commands)


def test_unique_ids_are_kept_octet_for_octet():
    ids = [b"inbox-M\xfcller-0001", b"inbox-M\xf6ller-0001"]
    box = FakeMailbox("pw", [make_message("a"), make_message("b")], uidls=list(ids))
    with _server(u=box) as server:
        client = _connect(server)
        client.login("u", "pw", "user")
        assert [item.uidl for item in client.listing()] == ids
        assert [uidl for _, uidl in client.uidl()] == ids
        client.quit()


def test_top_returns_the_header_and_the_first_body_lines_unstuffed():
    raw = make_message("top", ".dotted first line\r\nsecond line\r\nthird line")
    with _server(u=FakeMailbox("pw", [raw])) as server:
        client = _connect(server)
        client.login("u", "pw", "user")
        header_only = client.top(1)
        two_lines = client.top(1, 2)
        with pytest.raises(Pop3ServerError, match="TOP 2 refused"):
            client.top(2)
        client.quit()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert header_only == head + b"\r\n\r\n"
    assert two_lines == head + b"\r\n\r\n.dotted first line\r\nsecond line\r\n"
    assert body.startswith(b".dotted first line\r\nsecond line\r\nthird line")
