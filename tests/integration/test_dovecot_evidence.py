"""The evidence before DELE against a real Dovecot 2.3: what `TOP n 0` sends is the stored
original's header block (`archive.pipeline.evidence.header_block` of the RETR bytes), so an
earlier copy is proven without retrieving it again."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import pytest

from archive.pipeline.archiver import Archiver
from archive.pipeline.evidence import header_block
from archive.pop3.client import Endpoint, Pop3Client, RetrievedMessage
from tests.support.mail import mailbox_config, make_message

pytestmark = pytest.mark.dovecot

SHAPES = [
    b"Subject: crlf\r\nX-A: 1\r\n\r\nbody\r\n",
    b"Subject: bare lf\nX-A: 1\n\nbody\n",  # Dovecot sends CRLF in RETR and TOP alike
    b"Subject: no body\r\nX-A: 1\r\n",
    b"Subject: empty body\r\n\r\n",
    b"Subject: blank lines\r\n\r\n\r\nbody\r\n",
    b"Subject: dots\r\n\r\n.\r\n..\r\n",
    b"Subject: no final newline\r\n\r\nbody",
]


def _endpoint(dovecot) -> Endpoint:
    return Endpoint(dovecot.host, dovecot.pop3s_port, "implicit", dovecot.tls.ca_file, 10, "dv")


def test_top_n_0_is_the_header_block_of_what_retr_sends(dovecot, dovecot_user):
    user, password = dovecot_user(SHAPES)
    client = Pop3Client.connect(_endpoint(dovecot))
    client.login(user, password)
    pairs = []
    for item in client.listing():
        top = client.top(item.number, 0)
        (message,) = client.retrieve([item.number])
        pairs.append((top, header_block(message.read())))
        message.close()
    client.quit()
    assert len(pairs) == len(SHAPES)
    for top, block in pairs:
        assert top == block


class _Recording(Pop3Client):
    """The real client, noting the commands that carry evidence."""

    log: list[str]

    def retrieve(self, numbers: Sequence[int], window: int = 8) -> Iterator[RetrievedMessage]:
        self.log.extend(f"RETR {n}" for n in numbers)
        return super().retrieve(numbers, window)

    def top(self, number: int, lines: int = 0) -> bytes:
        self.log.append(f"TOP {number} {lines}")
        return super().top(number, lines)


def test_earlier_copies_are_proven_by_top_and_deleted(
    dovecot, dovecot_user, archiver: Archiver, monkeypatch
):
    messages = [make_message(f"evidence {i}") for i in range(3)]
    user, password = dovecot_user(messages)
    log: list[str] = []

    def connect(endpoint: Endpoint) -> Pop3Client:
        client = _Recording.connect(endpoint)
        client.log = log
        return client

    recording = dataclasses.replace(archiver, connect=connect)
    options = {"tls": "implicit", "ca_file": str(dovecot.tls.ca_file)}
    port = dovecot.pop3s_port
    kept = recording.run(
        mailbox_config(monkeypatch, user, dovecot.host, port, user, password, **options)
    )
    assert kept.archived == 3 and log == ["RETR 1", "RETR 2", "RETR 3"]
    del log[:]
    config = mailbox_config(
        monkeypatch, user, dovecot.host, port, user, password, delete_after_archive=True, **options
    )
    result = recording.run(config)
    assert log == ["TOP 1 0", "TOP 2 0", "TOP 3 0"]
    assert (result.new, result.deleted) == (0, 3)
    client = Pop3Client.connect(_endpoint(dovecot))
    client.login(user, password)
    assert client.listing() == []
    client.quit()
