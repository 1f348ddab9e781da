"""What a mailbox result says happened: status, notes, a QUIT nobody answered, a stop token,
and counts carried across retry attempts. In memory: no sockets, no database."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from archive.pipeline.result import MailboxFailed, MailboxResult, across_attempts
from archive.pop3.fake.memory import MemoryFaults
from tests.support.memory import PASSWORD, Rig, box


def mail(subject: str) -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nbody\r\n"
    ).encode()


def test_a_quit_answered_by_a_closed_connection_loses_nothing_when_nothing_was_marked():
    rig = Rig()
    raws = [mail("quit 1"), mail("quit 2")]
    rig.maildrop("q", list(raws))
    rig.server.faults = MemoryFaults(drop_on_quit=True)
    first = rig.run(box("q"))
    assert (first.status, first.archived, first.error) == ("ok", 2, None)
    assert first.note is not None and "QUIT not confirmed" in first.note
    assert rig.server.commands("DELE") == [] and rig.server.maildrops["q"].messages == raws
    again = rig.run(box("q"))  # and on every later run: nothing new, still ok
    assert (again.status, again.new, again.archived) == ("ok", 0, 0)


def test_a_dropped_quit_after_a_policy_that_deleted_nothing_is_ok():
    rig = Rig()
    rig.maildrop("young", [mail("young")])
    rig.server.faults = MemoryFaults(drop_on_quit=True)
    result = rig.run(box("young", delete_older_than_days=30))
    assert (result.status, result.archived, result.deleted) == ("ok", 1, 0)
    assert rig.server.commands("DELE") == []


def test_a_dropped_quit_after_dele_leaves_the_deletions_unconfirmed_for_the_next_run():
    rig = Rig()
    raws = [mail("d1"), mail("d2")]
    rig.maildrop("d", list(raws))
    rig.server.faults = MemoryFaults(drop_on_quit=True)
    config = box("d", delete_after_archive=True)
    with pytest.raises(MailboxFailed) as failure:
        rig.run(config)
    assert failure.value.result.status == "failed" and failure.value.result.archived == 2
    assert rig.server.maildrops["d"].messages == raws  # the server applied nothing
    assert all(e.delete_requested_at and e.deleted_at is None for e in rig.ledger("d"))
    rig.server.faults = MemoryFaults()
    second = rig.run(config)
    assert (second.status, second.new, second.deleted) == ("ok", 0, 2)
    assert rig.server.maildrops["d"].messages == []


def test_status_names_what_happened():
    rig = Rig()
    rig.maildrop("ok", [mail("ok")])
    assert rig.run(box("ok")).status == "ok"

    rig.maildrop("busy", [mail("busy")])
    rig.index.locked.add("busy")
    skipped = rig.run(box("busy"))
    assert (skipped.status, skipped.archived) == ("skipped", 0)
    rig.index.locked.discard("busy")

    rig.maildrop("capped", [mail(f"c{i}") for i in range(3)])
    partial = rig.run(box("capped", max_messages_per_session=1, max_sessions_per_run=2))
    assert (partial.status, partial.archived) == ("partial", 2)


def test_a_login_delay_longer_than_the_wait_defers_the_run():
    rig = Rig()
    rig.server.login_delay = 900
    rig.maildrop("slow", [mail("s1")])
    first = rig.run(box("slow"))
    # The follow-up session that would tell whether more mail waits is put off: partial.
    assert (first.status, first.archived) == ("partial", 1)
    rig.maildrop("slow", [mail("s2")])
    deferred = rig.run(box("slow", max_login_wait_seconds=10))
    assert (deferred.status, deferred.archived, deferred.sessions) == ("deferred", 0, 0)


def test_a_failed_login_is_a_failed_mailbox():
    rig = Rig()
    rig.maildrop("pw", [mail("pw")])
    with pytest.raises(MailboxFailed) as failure:
        rig.archiver.run(box("pw"), secret_lookup=lambda _: "wrong")
    assert failure.value.result.status == "failed" and not failure.value.transient


def _stopping_after(rig: Rig, archived: int) -> tuple[threading.Event, object]:
    stop = threading.Event()
    archiver = replace(rig.archiver, stop=stop)

    def progress(result: MailboxResult) -> None:
        if result.archived >= archived:
            stop.set()

    return stop, lambda config: archiver.run(
        config, secret_lookup=lambda _: PASSWORD, progress=progress
    )


def test_a_stop_mid_session_commits_what_arrived_and_sends_no_dele_and_no_quit():
    rig = Rig()
    raws = [mail(f"stop {i}") for i in range(6)]
    rig.maildrop("st", list(raws))
    stop, run = _stopping_after(rig, 2)
    result = run(box("st", delete_after_archive=True))
    assert stop.is_set()
    assert (result.status, result.interrupted, result.archived, result.deleted) == (
        "partial",
        True,
        2,
        0,
    )
    assert result.note is not None and "interrupted" in result.note
    # The four it never reached are not failures: they wait on the server for the next run.
    assert (result.new, result.failed_messages, result.not_reached) == (6, 0, 4)
    assert rig.server.commands("RETR") == ["RETR 1", "RETR 2"]
    assert rig.server.commands("DELE") == [] and rig.server.commands("QUIT") == []
    assert rig.server.maildrops["st"].messages == raws  # nothing deleted
    assert len(rig.ledger("st")) == 2  # what arrived is committed
    assert rig.server.sessions == 1 and rig.server.open_sessions == 0
    assert rig.index.locked == set()  # the mailbox lock is released


def test_a_stop_between_sessions_starts_no_new_session():
    rig = Rig()
    rig.maildrop("many", [mail(f"m{i}") for i in range(4)])
    _, run = _stopping_after(rig, 1)
    result = run(box("many", max_messages_per_session=1))
    assert (result.status, result.archived, result.sessions) == ("partial", 1, 1)
    assert rig.server.sessions == 1


def test_a_stop_before_the_run_opens_no_session():
    rig = Rig()
    rig.maildrop("early", [mail("e")])
    stop = threading.Event()
    stop.set()
    result = replace(rig.archiver, stop=stop).run(box("early"), secret_lookup=lambda _: PASSWORD)
    assert (result.status, result.interrupted, result.archived) == ("skipped", True, 0)
    assert rig.server.sessions == 0


def test_counts_carry_across_attempts():
    first = MailboxResult(
        name="big", status="failed", listed=300, new=300, archived=300, deleted=300,
        bytes=3000, seconds=4.0, sessions=1, error="dropped", transient=True,
    )  # fmt: skip
    retry = MailboxResult(
        name="big", status="failed", seconds=0.02, error="connection refused", transient=True
    )
    both = across_attempts(first, retry)
    assert (both.archived, both.deleted, both.bytes, both.attempts) == (300, 300, 3000, 2)
    assert (both.status, both.error, both.new, both.failed_messages) == (
        "failed",
        "connection refused",
        300,
        0,
    )
