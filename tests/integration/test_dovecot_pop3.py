"""The POP3 client against a real Dovecot: SASL, STLS, pipelining on and off, the per-IP cap,
and flat memory with a 100 MB message."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest
from sqlalchemy import text

from archive.errors import Pop3AuthError, Pop3TemporaryError
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.client import Endpoint, Pop3Client
from archive.store import raw_key
from tests.support.dovecot import running_dovecot
from tests.support.mail import mailbox_config, make_message

pytestmark = pytest.mark.dovecot


def _endpoint(dovecot, *, tls: str = "implicit", pipelining: bool = True) -> Endpoint:
    port = dovecot.pop3s_port if tls == "implicit" else dovecot.pop3_port
    return Endpoint(
        dovecot.host, port, tls, dovecot.tls.ca_file, 10, "mailbox 'dv'", pipelining=pipelining
    )


@pytest.mark.parametrize("method", ["user", "plain", "login", "auto"])
def test_auth_methods(dovecot, dovecot_user, method):
    user, password = dovecot_user([make_message("auth")])
    client = Pop3Client.connect(_endpoint(dovecot, tls="starttls"))
    client.login(user, password, method)
    assert [uidl for _, uidl in client.uidl()] != []
    client.quit()

    client = Pop3Client.connect(_endpoint(dovecot, tls="starttls"))
    with pytest.raises(Pop3AuthError) as refused:
        client.login(user, "wrong-" + password, method)
    client.close()
    assert password not in str(refused.value)
    assert not refused.value.transient


def test_unoffered_mechanism_is_refused_before_sending_credentials(dovecot, dovecot_user):
    user, password = dovecot_user()
    client = Pop3Client.connect(_endpoint(dovecot))
    with pytest.raises(Pop3AuthError, match="does not offer SASL XOAUTH2"):
        client.login(user, password, "xoauth2")
    client.close()


@pytest.mark.parametrize("pipelining", [True, False])
def test_pipelined_and_lockstep_retrieval_match(dovecot, dovecot_user, pipelining):
    messages = [make_message(f"pipe {i}", f".dot {i}\r\n" + "p" * (i * 997)) for i in range(30)]
    user, password = dovecot_user(messages)
    client = Pop3Client.connect(_endpoint(dovecot, pipelining=pipelining))
    client.login(user, password)
    assert client.pipelining is pipelining  # Dovecot always offers PIPELINING
    listing = client.listing()
    got = []
    for message in client.retrieve([item.number for item in listing], window=8):
        got.append(message.read())
        message.close()
    client.quit()
    assert got == [dovecot.served_bytes(raw) for raw in messages]
    assert [item.size for item in listing] == [len(raw) for raw in got]


def test_per_ip_connection_cap_is_transient(tmp_path, archiver: Archiver, monkeypatch):
    with running_dovecot(tmp_path, max_userip_connections=2) as dovecot:
        dovecot.add_user("capped", "pw-capped", [make_message("cap")])
        endpoint = _endpoint(dovecot)
        held = []
        for _ in range(2):
            client = Pop3Client.connect(endpoint)
            client.login("capped", "pw-capped")
            held.append(client)
        dovecot.wait_sessions("capped", 2)
        third = Pop3Client.connect(endpoint)
        with pytest.raises(Pop3TemporaryError, match="IN-USE"):
            third.login("capped", "pw-capped")
        third.close()
        box = mailbox_config(
            monkeypatch,
            "capped",
            dovecot.host,
            dovecot.pop3s_port,
            "capped",
            "pw-capped",
            ca_file=str(dovecot.tls.ca_file),
        )
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(box)
        assert failure.value.transient
        for client in held:
            client.quit()
        dovecot.wait_sessions("capped", 0)
        assert archiver.run(box).archived == 1


def test_100_mb_message_keeps_memory_flat(
    dovecot, dovecot_user, archiver: Archiver, fresh_engine, monkeypatch
):
    line = b"y" * 998 + b"\r\n"
    body = line * (100 * 1024 * 1024 // len(line))
    raw = make_message("huge") + body
    user, password = dovecot_user([raw])
    del body
    box = mailbox_config(
        monkeypatch,
        user,
        dovecot.host,
        dovecot.pop3s_port,
        user,
        password,
        ca_file=str(dovecot.tls.ca_file),
    )
    tracemalloc.start()
    try:
        result = archiver.run(box)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    served = dovecot.served_bytes(raw)
    sha = hashlib.sha256(served).hexdigest()
    del raw
    assert result.archived == 1 and result.bytes == len(served) > 100_000_000
    # Python allocations peak far below the message size: it is streamed, never held whole.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    with archiver.store.open(raw_key(sha)) as stream:
        digest = hashlib.sha256()
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == sha
    with fresh_engine.connect() as conn:
        kinds = conn.execute(
            text(
                "SELECT d.kind FROM archive.defects d JOIN mailarchive.message m "
                "ON m.id = d.message_id WHERE m.sha256 = :s"
            ),
            {"s": sha},
        ).scalars()
        assert "header_only" in list(kinds)
