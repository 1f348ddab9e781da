"""Connecting: a host name that does not exist is permanent, a resolver that may answer
later is not."""

from __future__ import annotations

import socket

import pytest

from archive.errors import ConfigError, Pop3ConnectionError, is_transient
from archive.pop3.client import Pop3Client
from archive.pop3.wire import Endpoint

ENDPOINT = Endpoint("pop.nonexistent.invalid", 995, "implicit", label="mailbox 'sales'")
WHERE = "mailbox 'sales' (pop.nonexistent.invalid:995): cannot connect"


def _resolver_says(monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    def create_connection(address: object, timeout: object = None) -> socket.socket:
        raise error

    monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.mark.parametrize(
    "code",
    [
        socket.EAI_NONAME,
        pytest.param(
            getattr(socket, "EAI_NODATA", None),
            marks=pytest.mark.skipif(not hasattr(socket, "EAI_NODATA"), reason="no EAI_NODATA"),
        ),
    ],
    ids=["EAI_NONAME", "EAI_NODATA"],
)
def test_a_host_name_that_does_not_exist_is_a_permanent_failure(monkeypatch, code):
    _resolver_says(monkeypatch, socket.gaierror(code, "Name or service not known"))
    with pytest.raises(ConfigError) as caught:
        Pop3Client.connect(ENDPOINT)
    assert str(caught.value) == f"{WHERE}: Name or service not known"
    assert not is_transient(caught.value)


@pytest.mark.parametrize(
    "error",
    [
        socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=["EAI_AGAIN", "refused"],
)
def test_a_resolver_or_server_that_may_answer_later_is_transient(monkeypatch, error):
    _resolver_says(monkeypatch, error)
    with pytest.raises(Pop3ConnectionError) as caught:
        Pop3Client.connect(ENDPOINT)
    assert str(caught.value) == f"{WHERE}: {error.strerror}"
    assert is_transient(caught.value)
