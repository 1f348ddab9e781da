"""The archiver end to end over the in-memory POP3 server, index and store."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from archive.pipeline.result import MailboxFailed, MailboxResult
from archive.pop3.fake.memory import MemoryFaults, MemoryMaildrop, MemoryPop3
from archive.store import MemoryStore, raw_key
from tests.support.memory import Rig, box, sha


def mail(subject: str, body: str = "body") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


def counts(result: MailboxResult) -> tuple[int, ...]:
    """(listed, new, archived, duplicates, deleted, failed, not reached)."""
    assert result.new == (
        result.archived + result.duplicates + result.failed_messages + result.not_reached
    )
    return (
        result.listed,
        result.new,
        result.archived,
        result.duplicates,
        result.deleted,
        result.failed_messages,
        result.not_reached,
    )


def test_new_mail_is_archived_byte_for_byte_and_indexed():
    rig = Rig()
    raws = [mail(f"new {i}", ".dotted\r\nline") for i in range(3)]
    rig.maildrop("ann", list(raws))
    result = rig.run(box("ann"))
    assert counts(result) == (3, 3, 3, 0, 0, 0, 0) and result.bytes == sum(map(len, raws))
    assert [rig.stored(raw) for raw in raws] == raws
    assert {e.sha256 for e in rig.ledger("ann")} == {sha(raw) for raw in raws}
    assert rig.index.messages[sha(raws[0])].parsed.subject == "new 0"
    assert rig.server.maildrops["ann"].messages == raws  # keep: nothing deleted


def test_second_run_archives_nothing():
    rig = Rig()
    rig.maildrop("ann", [mail(f"again {i}") for i in range(4)])
    rig.run(box("ann"))
    again = rig.run(box("ann"))
    assert counts(again) == (4, 0, 0, 0, 0, 0, 0)
    assert len(rig.server.commands("RETR")) == 4


def test_same_content_in_two_mailboxes_is_stored_once():
    rig = Rig()
    shared = mail("newsletter")
    rig.maildrop("a", [shared, mail("own a")])
    rig.maildrop("b", [shared])
    first, second = rig.run(box("a")), rig.run(box("b"))
    assert (first.archived, second.archived, second.duplicates) == (2, 0, 1)
    assert len(rig.index.messages) == 2 and len(rig.ledger("b")) == 1


def test_delete_after_archive_deletes_what_was_verified():
    rig = Rig()
    raws = [mail(f"delete {i}") for i in range(3)]
    rig.maildrop("del", list(raws))
    result = rig.run(box("del", delete_after_archive=True))
    assert counts(result) == (3, 3, 3, 0, 3, 0, 0)
    assert rig.server.maildrops["del"].messages == []
    assert [rig.stored(raw) for raw in raws] == raws
    assert all(e.deleted_at is not None for e in rig.ledger("del"))


@pytest.mark.parametrize("store", [MemoryStore(fail_puts=True), MemoryStore(corrupt_puts=True)])
def test_a_copy_that_does_not_verify_fails_the_session_and_deletes_nothing(store):
    rig = Rig().with_store(store)
    raws = [mail(f"keep {i}") for i in range(2)]
    rig.maildrop("keep", list(raws))
    with pytest.raises(MailboxFailed) as failure:
        rig.run(box("keep", delete_after_archive=True))
    # The first copy's write failed: the session ended there, the second never reached.
    assert counts(failure.value.result) == (2, 2, 0, 0, 0, 1, 1)
    assert rig.server.maildrops["keep"].messages == raws
    assert rig.server.commands("DELE") == [] and rig.server.commands("QUIT") == []
    assert rig.ledger("keep") == []


def test_a_damaged_earlier_copy_is_repaired_from_the_server_before_deletion():
    rig = Rig()
    raws = [mail("kept 0"), mail("kept 1")]
    rig.maildrop("v", list(raws))
    rig.run(box("v"))
    rig.store.put(raw_key(sha(raws[0])), io.BytesIO(b"bit rot"), 7)
    result = rig.run(box("v", delete_after_archive=True))
    assert (result.repaired, result.unrepaired, result.deleted) == (1, 0, 2)
    assert rig.stored(raws[0]) == raws[0] and rig.server.maildrops["v"].messages == []
    # The damaged one was retrieved (its stored copy was no evidence) before any DELE; the
    # intact one was proven by TOP.
    assert rig.server.commands("RETR") == ["RETR 1", "RETR 2", "RETR 1"]
    assert rig.server.commands("TOP") == ["TOP 2 0"]


def test_shared_uidl_keeps_both_copies_and_deletes_them_by_number():
    rig = Rig()
    first, second, other = mail("first"), mail("second"), mail("other")
    rig.maildrop("dup", [first, second, other], uidls=["same", "same", "unique"])
    result = rig.run(box("dup"))
    again = rig.run(box("dup", delete_after_archive=True))
    assert counts(result) == (3, 3, 3, 0, 0, 0, 0)
    # Read again because the UIDL is shared, found archived: not new, but verified and deleted.
    assert counts(again) == (3, 0, 0, 0, 3, 0, 0)
    assert [(e.uidl, e.occurrence, e.sha256) for e in rig.ledger("dup")] == [
        (b"same", 0, sha(first)),
        (b"same", 1, sha(second)),
        (b"unique", 0, sha(other)),
    ]
    assert rig.server.maildrops["dup"].messages == []


def test_identical_copies_under_one_uidl_get_a_row_each():
    rig = Rig()
    raw = mail("twin")
    rig.maildrop("twin", [raw, raw], uidls=["t", "t"])
    first = rig.run(box("twin"))
    again = rig.run(box("twin", delete_after_archive=True))
    assert (first.new, first.archived, first.duplicates) == (2, 1, 1)
    assert (again.new, again.deleted) == (0, 2)
    assert [e.deleted_at is not None for e in rig.ledger("twin")] == [True, True]


def test_an_earlier_shared_uidl_is_never_deleted_by_uidl():
    rig = Rig()
    first, second = mail("first"), mail("second")
    drop = rig.maildrop("amb", [first, second], uidls=["same", "same"])
    rig.run(box("amb"))
    drop.relabel(["gone", "same"])  # one copy left under the shared UIDL: which one?
    result = rig.run(box("amb", delete_after_archive=True))
    # The copy under "gone" was read again and recognised; the other is left alone.
    assert rig.server.maildrops["amb"].messages == [second]
    assert result.deleted == 1


def test_uidl_reset_relabels_the_ledger_and_stores_nothing_twice():
    rig = Rig()
    raws = [mail(f"m{i}") for i in range(4)]
    drop = rig.maildrop("mig", list(raws))
    rig.run(box("mig"))
    before = {e.sha256: e.id for e in rig.ledger("mig")}
    drop.relabel([f"new{i}" for i in range(4)])
    result = rig.run(box("mig"))
    assert (result.new, result.archived, result.duplicates, result.relabelled) == (4, 0, 4, 4)
    assert result.note is not None and "UIDL reset: 4" in result.note
    assert {e.sha256: e.id for e in rig.ledger("mig")} == before
    assert [e.uidl for e in rig.ledger("mig")] == [b"new%d" % i for i in range(4)]
    assert len(rig.index.messages) == 4


def test_a_session_dropped_mid_retrieve_deletes_nothing_and_the_next_run_finishes():
    rig = Rig()
    raws = [mail(f"drop {i}") for i in range(4)]
    rig.maildrop("drop", list(raws))
    rig.server.faults = MemoryFaults(drop_after_retrieved=2)
    config = box("drop", delete_after_archive=True)
    with pytest.raises(MailboxFailed) as failure:
        rig.run(config)
    assert failure.value.transient
    # The connection dropped: no copy failed itself, two were never reached.
    assert counts(failure.value.result) == (4, 4, 2, 0, 0, 0, 2)
    assert rig.server.maildrops["drop"].messages == raws
    assert rig.server.commands("DELE") == [] and rig.server.commands("QUIT") == []
    assert [e.delete_requested_at for e in rig.ledger("drop")] == [None, None]
    rig.server.faults = MemoryFaults()
    after = rig.run(config)
    assert counts(after) == (4, 2, 2, 0, 4, 0, 0) and rig.server.maildrops["drop"].messages == []


def test_failed_quit_is_reconciled_on_the_next_run():
    rig = Rig()
    raws = [mail(f"q{i}") for i in range(3)]
    rig.maildrop("q", list(raws))
    rig.server.faults = MemoryFaults(quit_error=True)
    config = box("q", delete_after_archive=True)
    with pytest.raises(MailboxFailed, match="QUIT failed"):
        rig.run(config)
    pending = [(e.delete_requested_at is not None, e.deleted_at) for e in rig.ledger("q")]
    assert pending == [(True, None)] * 3 and rig.server.maildrops["q"].messages == raws
    rig.server.faults = MemoryFaults()
    second = rig.run(config)
    assert (second.new, second.deleted) == (0, 3) and rig.server.maildrops["q"].messages == []
    assert all(e.deleted_at is not None for e in rig.ledger("q"))


def test_deletion_applied_before_a_dropped_quit_is_confirmed_by_absence():
    rig = Rig()
    rig.maildrop("g", [mail("g0"), mail("g1")])
    rig.server.faults = MemoryFaults(drop_on_quit=True, applied_before_drop=True)
    with pytest.raises(MailboxFailed) as failure:
        rig.run(box("g", delete_after_archive=True))
    assert failure.value.transient and rig.server.maildrops["g"].messages == []
    assert all(e.deleted_at is None for e in rig.ledger("g"))
    rig.server.faults = MemoryFaults()
    result = rig.run(box("g"))
    assert (result.listed, result.deleted) == (0, 0)
    assert all(e.deleted_at is not None for e in rig.ledger("g"))


def test_delete_older_than_counts_from_first_archived():
    rig = Rig()
    old, young = mail("old"), mail("young")
    drop = rig.maildrop("age", [old])
    config = box("age", delete_older_than_days=30)
    assert rig.run(config).deleted == 0
    rig.clock.now += timedelta(days=20)
    drop.add(young)
    assert rig.run(config).deleted == 0
    rig.clock.now += timedelta(days=11)
    result = rig.run(config)
    assert result.deleted == 1 and drop.messages == [young]


def test_keep_never_sends_dele():
    rig = Rig()
    rig.maildrop("k", [mail("k0"), mail("k1")])
    rig.run(box("k"))
    rig.run(box("k"))
    assert rig.server.commands("DELE") == [] and len(rig.server.maildrops["k"].messages) == 2


def test_per_session_cap_opens_follow_up_sessions():
    rig = Rig()
    rig.maildrop("cap", [mail(f"s{i}") for i in range(7)])
    result = rig.run(box("cap", max_messages_per_session=3))
    # 3 + 3 + 1: the third session was not capped and listed mail it had, so it was last.
    assert (result.archived, result.sessions) == (7, 3)
    assert len(rig.server.commands("PASS")) == 3
    assert [n for n, line in rig.server.log if line.startswith("RETR")] == [1] * 3 + [2] * 3 + [3]


def test_byte_cap_per_session():
    rig = Rig()
    raws = [mail(f"b{i}", "x" * 100) for i in range(4)]
    rig.maildrop("bytes", raws)
    result = rig.run(box("bytes", max_bytes_per_session=2 * len(raws[0])))
    assert (result.archived, result.sessions) == (4, 2)


def test_max_sessions_per_run_bounds_the_loop():
    rig = Rig()
    rig.maildrop("few", [mail(f"b{i}") for i in range(5)])
    result = rig.run(box("few", max_messages_per_session=2, max_sessions_per_run=2))
    assert (result.new, result.archived, result.sessions) == (4, 4, 2)
    assert result.note is not None and "more mail may remain" in result.note


def test_a_server_listing_part_of_the_mailbox_is_learnt_and_followed():
    # Gmail lists a few not-yet-downloaded messages per session.
    rig = Rig(server=MemoryPop3({}, max_listed=2))
    rig.maildrop("gmail", [mail(f"g{i}") for i in range(5)])
    result = rig.run(box("gmail"))
    assert (result.archived, result.sessions) == (5, 4)
    assert rig.index.mailboxes["gmail"].listing_limited is True


def test_a_server_that_lists_everything_is_probed_once():
    rig = Rig()
    drop = rig.maildrop("probe", [mail(f"p{i}") for i in range(3)])
    first = rig.run(box("probe", delete_after_archive=True))
    drop.add(mail("later"))
    second = rig.run(box("probe", delete_after_archive=True))
    assert (first.archived, first.sessions) == (3, 2)
    assert rig.index.mailboxes["probe"].listing_limited is False
    assert (second.archived, second.sessions, second.deleted) == (1, 1, 1)


def test_login_delay_is_waited_out_between_sessions():
    rig = Rig(server=MemoryPop3({}, login_delay=120))
    rig.maildrop("slow", [mail(f"d{i}") for i in range(3)])
    result = rig.run(box("slow", max_messages_per_session=2))
    assert (result.archived, result.sessions) == (3, 2) and rig.clock.slept == [120.0]


def test_login_delay_longer_than_allowed_defers_the_run():
    rig = Rig(server=MemoryPop3({}, login_delay=3600))
    rig.maildrop("slow", [mail("d0"), mail("d1")])
    first = rig.run(box("slow", max_messages_per_session=1, max_login_wait_seconds=60))
    assert first.archived == 1 and "more mail may be waiting" in (first.note or "")
    second = rig.run(box("slow", max_login_wait_seconds=60))
    assert second.sessions == 0 and "run deferred" in (second.note or "")
    assert rig.clock.slept == []


def test_a_locked_mailbox_is_skipped():
    rig = Rig()
    rig.maildrop("busy", [mail("x")])
    with rig.index.mailbox("busy", "pop.example", "busy") as other, other.lock("busy") as held:
        assert held
        skipped = rig.run(box("busy"))
    assert skipped.archived == 0 and "another session" in (skipped.note or "")
    assert rig.server.sessions == 0 and rig.run(box("busy")).archived == 1


def test_progress_reports_counts_as_messages_arrive():
    rig = Rig()
    rig.maildrop("p", [mail(f"p{i}") for i in range(3)])
    seen: list[tuple[int, int]] = []
    rig.archiver.run(
        box("p"),
        secret_lookup=lambda _: "secret",
        progress=lambda r: seen.append((r.new, r.archived)),
    )
    assert seen == [(3, 1), (3, 2), (3, 3)]


def test_the_ledger_is_read_once_per_run():
    rig = Rig()
    rig.maildrop("once", [mail(f"o{i}") for i in range(5)])
    result = rig.run(box("once", max_messages_per_session=2))
    assert (result.sessions, result.archived, rig.index.ledger_reads) == (3, 5, 1)


def test_wrong_password_is_permanent_and_never_in_the_error():
    rig = Rig()
    rig.server.maildrops["carol"] = MemoryMaildrop("other-password", [mail("c")])
    with pytest.raises(MailboxFailed) as failure:
        rig.run(box("carol"))
    assert not failure.value.transient and "carol" in str(failure.value)
    assert "secret" not in str(failure.value)


def test_a_maildrop_in_use_is_a_transient_failure_that_retrieves_nothing():
    rig = Rig()
    raws = [mail("busy 0")]
    rig.maildrop("inuse", list(raws))
    rig.server.faults = MemoryFaults(login_error_code="IN-USE", login_error_count=1)
    with pytest.raises(MailboxFailed, match=r"\[IN-USE\]") as failure:
        rig.run(box("inuse", delete_after_archive=True))
    assert failure.value.transient and counts(failure.value.result) == (0, 0, 0, 0, 0, 0, 0)
    assert rig.server.commands("UIDL") == [] and rig.server.open_sessions == 0
    retried = rig.run(box("inuse", delete_after_archive=True))
    assert (retried.archived, retried.deleted) == (1, 1)
