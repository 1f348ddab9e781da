"""POP3 faults, one table: each faulty mailbox ends in a retried success or a clear failure of
that mailbox alone, while a healthy mailbox archived by the same archiver succeeds. Never a
lost message, a row twice, or a message gone from the server without an archived copy.

Retries are what flows/ does: the same `Archiver.run` again while the error is transient
(`is_transient`, the Prefect `retry_condition_fn`), up to the default three retries. A fault
marked `once` hits the first attempt only (the retry meets a healthy server holding the same
maildrop); the others hit every attempt.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine

from archive.errors import is_transient
from archive.pipeline.archiver import Archiver, MailboxFailed, MailboxResult
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from archive.store import LocalStore, raw_key
from tests.support.mail import mailbox_config, make_message, scalar

DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class Fault:
    options: FakeServerOptions | None = None  # None: a server that accepts and never speaks
    once: bool = False
    expect_ok: bool = True
    expect_transient: bool = True  # of the first failure
    min_attempts: int = 2
    fails_first: bool = True
    body: str = "body"
    box: dict[str, object] = field(default_factory=dict)


FAULTS = {
    # Each session archives one 50 kB message, then the connection drops in the next RETR;
    # every retry gets further, the fourth attempt finishes and deletes.
    "drop mid-RETR": Fault(
        FakeServerOptions(drop_after_bytes=70_000), body="y" * 50_000, min_attempts=4
    ),
    "drop after DELE, before QUIT": Fault(FakeServerOptions(fault="drop_before_quit"), once=True),
    "drop after UPDATE, before +OK": Fault(FakeServerOptions(fault="drop_after_update"), once=True),
    # -ERR on QUIT: nothing deleted; a permanent error, so not retried, and the mailbox fails
    # clearly; the next run (below) deletes with evidence.
    "-ERR on QUIT": Fault(
        FakeServerOptions(quit_error=True),
        once=True,
        expect_ok=False,
        expect_transient=False,
        min_attempts=1,
    ),
    "[IN-USE]": Fault(FakeServerOptions(login_error_code="IN-USE", login_error_count=1)),
    "[SYS/TEMP]": Fault(FakeServerOptions(login_error_code="SYS/TEMP", login_error_count=1)),
    "accept, then silence": Fault(
        None, expect_ok=False, min_attempts=1 + DEFAULT_RETRIES, box={"timeout_seconds": 0.5}
    ),
    "trickling server": Fault(
        FakeServerOptions(trickle=(997, 0.0005)), fails_first=False, min_attempts=1
    ),
}


class SilentServer:
    """Accepts connections and never says a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


def _run(archiver: Archiver, box) -> MailboxResult | MailboxFailed:  # type: ignore[no-untyped-def]
    try:
        return archiver.run(box)
    except MailboxFailed as failed:
        return failed


def _attempts(archiver: Archiver, boxes) -> list[MailboxResult | MailboxFailed]:  # type: ignore[no-untyped-def]
    """First attempt, then retries while the failure is transient, as flows/ does."""
    outcomes = []
    for box in boxes:
        outcome = _run(archiver, box)
        outcomes.append(outcome)
        if not isinstance(outcome, MailboxFailed) or not is_transient(outcome):
            break
    return outcomes


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_faulty_mailbox_retries_or_fails_alone(
    name: str, archiver: Archiver, local_store: LocalStore, fresh_engine: Engine, monkeypatch
):
    fault = FAULTS[name]
    messages = [make_message(f"{name} {i}", fault.body) for i in range(4)]
    healthy = [make_message(f"healthy {i}") for i in range(3)]
    faulty_box = FakeMailbox("secret", list(messages))
    healthy_box = FakeMailbox("secret", list(healthy))
    silent = SilentServer() if fault.options is None else None
    faulty = None if silent else FakePop3Server({"bad": faulty_box}, options=fault.options)
    good = FakePop3Server({"good": healthy_box})
    healed = FakePop3Server({"bad": faulty_box})
    with good, healed:
        if faulty is not None:
            faulty.start()
        try:
            where = silent or faulty
            assert where is not None
            first = mailbox_config(
                monkeypatch, "bad", where.host, where.port, "bad", "secret",
                tls="none", delete_after_archive=True, **fault.box,
            )  # fmt: skip
            later = (
                mailbox_config(
                    monkeypatch,
                    "bad",
                    healed.host,
                    healed.port,
                    "bad",
                    "secret",
                    tls="none",
                    delete_after_archive=True,
                )  # fmt: skip
                if fault.once
                else first
            )
            outcomes = _attempts(archiver, [first, *[later] * DEFAULT_RETRIES])
            good_result = archiver.run(
                mailbox_config(
                    monkeypatch,
                    "good",
                    good.host,
                    good.port,
                    "good",
                    "secret",
                    tls="none",
                    delete_after_archive=True,
                )  # fmt: skip
            )
        finally:
            if faulty is not None:
                faulty.stop()
            if silent is not None:
                silent.close()
        last = outcomes[-1]
        # The fault showed, and was classified as the table says.
        if fault.fails_first:
            assert isinstance(outcomes[0], MailboxFailed), outcomes[0]
            assert outcomes[0].transient is fault.expect_transient
            assert len(outcomes) >= fault.min_attempts
        else:
            assert len(outcomes) == 1
        if fault.expect_ok:
            assert not isinstance(last, MailboxFailed), last
            assert faulty_box.messages == []
        else:
            assert isinstance(last, MailboxFailed)
            error = str(last)
            assert error.startswith("mailbox 'bad'") and "\n" not in error, error
            assert "healthy" not in error and "good" not in error
            # A later run (the next schedule) against a working server finishes the job.
            recovered = archiver.run(later if fault.once else _healthy_again(monkeypatch, healed))
            assert recovered.ok and faulty_box.messages == []

    # The healthy mailbox never noticed.
    assert good_result.ok and (good_result.archived, good_result.deleted) == (3, 3)
    assert healthy_box.messages == []
    # Nothing lost, nothing twice: every message that left a server is archived byte-exact,
    # once in the index, under one ledger row.
    for raw in messages + healthy:
        assert local_store.get(raw_key(_sha(raw))) == raw
    assert scalar(fresh_engine, "SELECT count(*) FROM mailarchive.message") == 7
    assert scalar(fresh_engine, "SELECT count(*) FROM mailarchive.delivery") == 7
    assert (
        scalar(
            fresh_engine,
            "SELECT count(*) FROM mailarchive.delivery WHERE deleted_at IS NOT NULL",
        )
        == 7
    )


def _healthy_again(monkeypatch, healed: FakePop3Server):  # type: ignore[no-untyped-def]
    return mailbox_config(
        monkeypatch, "bad", healed.host, healed.port, "bad", "secret",
        tls="none", delete_after_archive=True,
    )  # fmt: skip
