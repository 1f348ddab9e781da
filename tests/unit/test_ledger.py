"""The ledger's rules, one by one: new, stale, ambiguous, placement, confirmation, deletable."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from archive.pipeline.ledger import Known, Ledger, LedgerEntry, Place, is_imported
from archive.pop3.source import Listed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(
    id: int,
    uidl: bytes,
    occurrence: int = 0,
    sha: str | None = None,
    *,
    archived_at: datetime = T0,
    requested: datetime | None = None,
    deleted: datetime | None = None,
) -> LedgerEntry:
    sha = sha or f"sha-{uidl.decode()}"
    return LedgerEntry(id, uidl, occurrence, 100 + id, sha, 10, archived_at, requested, deleted)


def listing(*uidls: bytes) -> list[Listed]:
    return [Listed(number, uidl, 10) for number, uidl in enumerate(uidls, start=1)]


def test_keys_count_copies_of_a_uidl_from_zero():
    session = Ledger().session(listing(b"a", b"b", b"a", b"a"))
    assert session.keys == {1: (b"a", 0), 2: (b"b", 0), 3: (b"a", 1), 4: (b"a", 2)}
    assert session.seen == {(b"a", 0), (b"b", 0), (b"a", 1), (b"a", 2)}


def test_new_is_what_the_ledger_lacks():
    session = Ledger([entry(1, b"a")]).session(listing(b"a", b"b"))
    assert [item.uidl for item in session.new()] == [b"b"]


def test_copies_under_a_shared_uidl_are_always_read_again():
    ledger = Ledger([entry(1, b"s", 0), entry(2, b"s", 1), entry(3, b"u")])
    assert [item.number for item in ledger.session(listing(b"s", b"s", b"u")).new()] == [1, 2]


def test_stale_rows_are_unlisted_and_not_being_deleted():
    ledger = Ledger(
        [
            entry(1, b"listed"),
            entry(2, b"gone"),
            entry(3, b"asked", requested=T0),
            entry(4, b"done", requested=T0, deleted=T0),
        ]
    )
    assert [e.id for e in ledger.session(listing(b"listed")).stale()] == [2]


def test_ambiguous_uidls_are_shared_now_or_ever():
    ledger = Ledger([entry(1, b"was-shared", 1), entry(2, b"plain")])
    session = ledger.session(listing(b"now-shared", b"now-shared", b"plain", b"was-shared"))
    assert session.ambiguous() == {b"now-shared", b"was-shared"}


def test_acknowledged_deletions_are_confirmed_by_absence_only():
    ledger = Ledger(
        [
            entry(1, b"gone", requested=T0),
            entry(2, b"still-there", requested=T0),
            entry(3, b"confirmed", requested=T0, deleted=T0),
            entry(4, b"never-asked"),
        ]
    )
    assert ledger.session(listing(b"still-there")).confirmed_by_absence() == [1]


def test_a_unique_uidl_is_placed_under_its_listing_key():
    session = Ledger().session(listing(b"a", b"b"))
    assert session.place(2, "sha-b") == Place((b"b", 0))


def test_a_known_copy_under_a_shared_uidl_is_found_by_content():
    ledger = Ledger([entry(1, b"s", 0, "x"), entry(2, b"s", 1, "y")])
    session = ledger.session(listing(b"s", b"s"))
    assert session.place(1, "y") == Known(2)
    assert session.place(2, "x") == Known(1)


def test_a_row_stands_for_one_copy_so_identical_copies_get_their_own_rows():
    ledger = Ledger([entry(1, b"s", 0, "same")])
    session = ledger.session(listing(b"s", b"s"))
    assert session.place(1, "same") == Known(1)
    assert session.place(2, "same") == Place((b"s", 1))


def test_new_content_under_a_shared_uidl_takes_the_next_free_occurrence():
    ledger = Ledger([entry(1, b"s", 0, "x"), entry(2, b"s", 3, "y")])
    session = ledger.session(listing(b"s", b"s", b"s"))
    assert session.place(3, "z") == Place((b"s", 4))
    session.recorded(entry(9, b"s", 4, "z"))
    assert session.place(1, "w") == Place((b"s", 5))
    assert ledger.next_occurrence(b"s") == 5 and ledger.next_occurrence(b"fresh") == 0


def test_a_uidl_reset_relabels_the_lowest_stale_row_with_that_content():
    ledger = Ledger(
        [entry(7, b"old-a", sha="A"), entry(3, b"old-b", sha="A"), entry(5, b"x", sha="X")]
    )
    session = ledger.session(listing(b"new-a", b"new-b", b"x"))
    assert session.place(1, "A") == Place((b"new-a", 0), relabel=3)
    session.recorded(entry(3, b"new-a", sha="A"))
    assert session.place(2, "A") == Place((b"new-b", 0), relabel=7)
    session.recorded(entry(7, b"new-b", sha="A"))
    # Its key is now a row's: placed again, it would be another copy, and relabel nothing.
    assert session.place(2, "A") == Place((b"new-b", 1), relabel=None)
    # The relabelled rows moved: their old keys are free, their new keys taken.
    assert (b"old-a", 0) not in ledger and ledger.get((b"new-b", 0)) == entry(7, b"new-b", sha="A")
    assert [e.id for e in ledger.session(listing(b"new-a", b"new-b", b"x")).stale()] == []


def test_rows_being_deleted_are_not_relabelled():
    ledger = Ledger([entry(1, b"old", sha="A", requested=T0)])
    assert ledger.session(listing(b"new")).place(1, "A") == Place((b"new", 0))


IMPORTED = b"import:" + b"a" * 64


def test_an_imported_row_is_never_a_renamed_server_copy_nor_deleted_by_its_id():
    assert is_imported(IMPORTED) and not is_imported(b"import:short")
    ledger = Ledger([entry(1, IMPORTED, sha="A")])
    # Same content listed under a server's id: a new row, not the imported one relabelled.
    assert ledger.session(listing(b"u1")).place(1, "A") == Place((b"u1", 0))
    # A server listing the imported id itself (breaking RFC 1939's 70 characters): not
    # proposed for DELE, however old the row.
    session = ledger.session(listing(IMPORTED))
    deletions = session.deletions({}, everything=False, cutoff=T0 + timedelta(days=10))
    assert deletions.earlier == {} and deletions.ambiguous == 1


def test_one_key_one_row():
    ledger = Ledger([entry(1, b"a")])
    with pytest.raises(ValueError, match=r"held by row 1"):
        ledger.add(entry(2, b"a"))


def test_stamps_update_the_rows_in_memory():
    ledger = Ledger([entry(1, b"a"), entry(2, b"b")])
    later = T0 + timedelta(hours=1)
    ledger.stamp({1: later}, "delete_requested_at")
    ledger.stamp({1: later, 99: later}, "deleted_at")
    assert ledger.by_id(1) == replace(entry(1, b"a"), delete_requested_at=later, deleted_at=later)
    assert ledger.by_id(2) == entry(2, b"b") and len(ledger) == 2


def test_nothing_is_deletable_without_a_policy():
    session = Ledger([entry(1, b"a")]).session(listing(b"a", b"b"))
    deletions = session.deletions({2: 5}, everything=False, cutoff=None)
    assert (deletions.now, deletions.earlier) == ({}, {})


def test_after_archive_deletes_this_session_and_every_unconfirmed_earlier_copy():
    ledger = Ledger(
        [
            entry(1, b"earlier"),
            entry(2, b"asked-before", requested=T0),
            entry(3, b"done", deleted=T0),
            entry(4, b"shared", 0),
            entry(5, b"was-shared", 1),
            entry(6, b"was-shared", 0),
        ]
    )
    session = ledger.session(
        listing(b"earlier", b"asked-before", b"done", b"shared", b"shared", b"was-shared", b"fresh")
    )
    session.recorded(entry(8, b"fresh"))
    deletions = session.deletions({7: 8, 4: 4}, everything=True, cutoff=None)
    assert deletions.now == {7: 8, 4: 4}
    assert deletions.earlier == {1: ledger.by_id(1), 2: ledger.by_id(2)}
    assert deletions.ambiguous == 1  # was-shared: which copy is left is unknowable


def test_older_than_deletes_only_earlier_copies_past_the_cutoff():
    young, old = T0 + timedelta(days=20), T0
    ledger = Ledger([entry(1, b"old", archived_at=old), entry(2, b"young", archived_at=young)])
    session = ledger.session(listing(b"old", b"young", b"new"))
    session.recorded(entry(3, b"new", archived_at=old))  # archived in this very session
    deletions = session.deletions({3: 3}, everything=False, cutoff=T0 + timedelta(days=10))
    assert deletions.now == {} and list(deletions.earlier) == [1]
