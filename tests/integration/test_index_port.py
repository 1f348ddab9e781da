"""One contract, two indexes: the in-memory index must answer the pipeline as the
PostgreSQL one does, or the pipeline's unit tests lie."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from archive.index.ledger import IndexWriter
from archive.index.memory import MemoryIndex
from archive.mime import parse_message
from archive.pipeline.ports import Index, MailboxLedgerIndex

RAW = [
    b"Subject: a\r\nMessage-ID: <a@x>\r\n\r\nA\r\n",
    b"Subject: b\r\nMessage-ID: <b@x>\r\n\r\nB\r\n",
]
SHA = [hashlib.sha256(raw).hexdigest() for raw in RAW]


@pytest.fixture(params=["memory", "postgres"])
def index(request) -> Iterator[Index]:
    if request.param == "memory":
        yield MemoryIndex()
    else:
        yield IndexWriter(request.getfixturevalue("fresh_engine"))


def _open(index: Index, stack: ExitStack, name: str) -> MailboxLedgerIndex:
    return stack.enter_context(index.mailbox(name, "pop.example", name))


def _record(
    box: MailboxLedgerIndex, key: tuple[str | bytes, int], n: int, relabel: int | None = None
):
    parsed = parse_message(RAW[n]) if box.find_message(SHA[n]) is None else None
    uidl = key[0] if isinstance(key[0], bytes) else key[0].encode()
    return box.record((uidl, key[1]), SHA[n], len(RAW[n]), parsed, relabel)


def test_content_is_stored_once_and_each_copy_gets_a_row(index: Index):
    with ExitStack() as stack:
        box, other = _open(index, stack, "box"), _open(index, stack, "other")
        first = _record(box, ("u1", 0), 0)
        copy = _record(box, ("u2", 0), 0)
        again = _record(box, ("u1", 0), 0)
        elsewhere = _record(other, ("u1", 0), 0)
        assert (first.created, copy.created, again.created, elsewhere.created) == (
            True,
            False,
            False,
            False,
        )
        assert first.message_id == copy.message_id == elsewhere.message_id
        assert box.find_message(SHA[0]) == first.message_id and box.find_message(SHA[1]) is None
        assert again.entry == first.entry and copy.delivery_id != first.delivery_id
        assert (first.entry.uidl, first.entry.occurrence, first.entry.sha256) == (b"u1", 0, SHA[0])
        assert first.entry.delete_requested_at is None and first.entry.deleted_at is None
        assert sorted(box.ledger(), key=lambda e: e.id) == [first.entry, copy.entry]
        assert other.ledger() == [elsewhere.entry]


def test_unique_ids_one_octet_apart_are_two_keys_and_rows_carry_the_size(index: Index):
    with ExitStack() as stack:
        box = _open(index, stack, "box")
        mueller = _record(box, (b"inbox-M\xfcller-0001", 0), 0)
        moeller = _record(box, (b"inbox-M\xf6ller-0001", 0), 1)
        assert mueller.delivery_id != moeller.delivery_id
        assert {(e.uidl, e.sha256, e.size) for e in box.ledger()} == {
            (b"inbox-M\xfcller-0001", SHA[0], len(RAW[0])),
            (b"inbox-M\xf6ller-0001", SHA[1], len(RAW[1])),
        }


def test_relabel_moves_a_row_of_the_same_content_only(index: Index):
    with ExitStack() as stack:
        box = _open(index, stack, "box")
        old_a, old_b = _record(box, ("old-a", 0), 0), _record(box, ("old-b", 0), 1)
        moved = _record(box, ("new-a", 0), 0, relabel=old_a.delivery_id)
        refused = _record(box, ("new-b", 0), 1, relabel=old_a.delivery_id)  # other content
        assert moved.relabelled and moved.delivery_id == old_a.delivery_id
        assert moved.entry.archived_at == old_a.entry.archived_at
        assert (moved.entry.uidl, moved.entry.occurrence) == (b"new-a", 0)
        assert not refused.relabelled and refused.delivery_id != old_b.delivery_id
        assert {(e.uidl, e.id) for e in box.ledger()} == {
            (b"new-a", old_a.delivery_id),
            (b"old-b", old_b.delivery_id),
            (b"new-b", refused.delivery_id),
        }


def test_stamps_are_returned_and_only_for_this_mailbox(index: Index):
    with ExitStack() as stack:
        box, other = _open(index, stack, "box"), _open(index, stack, "other")
        mine, theirs = _record(box, ("u", 0), 0), _record(other, ("u", 0), 0)
        ids = [mine.delivery_id, theirs.delivery_id]
        requested = box.mark_delete_requested(ids)
        deleted = box.mark_deleted(iter(ids))
        assert list(requested) == list(deleted) == [mine.delivery_id]
        (entry,) = box.ledger()
        assert entry.delete_requested_at == requested[mine.delivery_id]
        assert entry.deleted_at == deleted[mine.delivery_id]
        assert other.ledger() == [theirs.entry]
        assert box.mark_deleted([]) == {}


def test_login_state_and_listing_limit_persist(index: Index):
    with ExitStack() as stack:
        box = _open(index, stack, "box")
        fresh = box.login_state()
        assert (fresh.last_login_at, fresh.listing_limited, fresh.seconds_until_login()) == (
            None,
            None,
            0.0,
        )
        box.record_login(300)
        box.set_listing_limited(True)
    with ExitStack() as stack:
        state = _open(index, stack, "box").login_state()
        assert state.last_login_at is not None and state.login_delay_seconds == 300
        assert state.listing_limited is True and 0 < state.seconds_until_login() <= 300


def test_one_run_per_mailbox(index: Index):
    with ExitStack() as stack:
        first, second = _open(index, stack, "box"), _open(index, stack, "box")
        with first.lock("box") as held:
            with second.lock("box") as also:
                assert (held, also) == (True, False)
        with second.lock("box") as later:
            assert later


def test_content_indexed_meanwhile_is_linked_not_inserted_again(index: Index):
    # Another mailbox's run indexed the content between this run's find_message and record:
    # record is handed a parse, and the content is still stored once.
    with ExitStack() as stack:
        box, other = _open(index, stack, "box"), _open(index, stack, "other")
        first = _record(other, ("u1", 0), 0)
        late = box.record((b"u9", 0), SHA[0], len(RAW[0]), parse_message(RAW[0]))
        assert (late.created, late.message_id) == (False, first.message_id)
        assert (late.entry.uidl, late.entry.sha256, late.entry.size) == (b"u9", SHA[0], len(RAW[0]))
        assert box.ledger() == [late.entry]


@pytest.mark.parametrize("batched", [False, True])
def test_new_content_under_a_recorded_key_leaves_the_row_as_stored(index: Index, batched: bool):
    with ExitStack() as stack:
        box = _open(index, stack, "box")
        with box.batch() if batched else ExitStack():
            first = _record(box, ("u1", 0), 0)
            other = box.record((b"u1", 0), SHA[1], len(RAW[1]), parse_message(RAW[1]))
            assert other.created and other.entry == first.entry
            # Inside a batch too: the content's own row, not the row the key points at.
            found = box.find_message(SHA[1])
            assert found is not None and found != first.message_id
        assert box.ledger() == [first.entry]


def test_a_batch_knows_what_it_recorded_and_forgets_it_when_rolled_back(index: Index):
    with ExitStack() as stack:
        box = _open(index, stack, "box")
        with pytest.raises(RuntimeError), box.batch():
            first = _record(box, ("u1", 0), 0)
            assert box.find_message(SHA[0]) == first.message_id
            copy = _record(box, ("u2", 0), 0)
            assert (copy.created, copy.message_id) == (False, first.message_id)
            raise RuntimeError("rolled back")
        assert box.find_message(SHA[0]) is None and box.ledger() == []
        with box.batch():
            again = _record(box, ("u1", 0), 0)
        assert again.created and box.find_message(SHA[0]) == again.message_id
        assert box.ledger() == [again.entry]
