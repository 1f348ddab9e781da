"""The delete policies, and the evidence an earlier copy needs before DELE.

An earlier copy is known only by its ledger row; it may go only if the server's message is
shown to be the archived original: LIST size and `TOP n 0` header block against the stored
original read back verified. Anything short of that is retrieved and hashed.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest

from archive.config import MailboxConfig
from archive.pipeline.deletion import allowed_by_policy, plan_deletions
from archive.pipeline.evidence import gather_evidence, header_block, stored_header
from archive.pipeline.ledger import Ledger, LedgerEntry
from archive.pop3.fake.memory import MemoryMaildrop, MemoryPop3
from archive.pop3.source import Endpoint
from archive.store import MemoryStore, ObjectState, raw_key

NOW = datetime(2026, 3, 1, tzinfo=UTC)
A = b"Message-ID: <a@x>\r\nSubject: A\r\n\r\nthe first body\r\n"
B = b"Message-ID: <b@x>\r\nSubject: B\r\n\r\nthe other body\r\n"  # same size as A
assert len(A) == len(B)


def _box(**options: object) -> MailboxConfig:
    return MailboxConfig.model_validate(
        {"name": "box", "host": "pop.example", "username": "u", "password_env": "PW", **options}
    )


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _stored(store: MemoryStore, raw: bytes) -> str:
    store.put(raw_key(_sha(raw)), io.BytesIO(raw), len(raw))
    return _sha(raw)


def _entry(id: int, uidl: bytes, raw: bytes, days_old: int = 0) -> LedgerEntry:
    archived_at = NOW - timedelta(days=days_old)
    return LedgerEntry(id, uidl, 0, id, _sha(raw), len(raw), archived_at, None, None)


def _source(messages: list[bytes], uidls: list[bytes], *, top: bool = True):
    server = MemoryPop3({"u": MemoryMaildrop("pw", messages, uidls)}, offers_top=top)
    session = server.connect(Endpoint("pop.example", 110, "none", None, 5, "box"))
    session.login("u", "pw")
    return server, session, session.listing()


def _evidence(store, entries, messages, uidls, *, top: bool = True):
    server, session, listing = _source(messages, uidls, top=top)
    ledger = Ledger(entries).session(listing)
    candidates = allowed_by_policy(_box(delete_after_archive=True), ledger, {}, now=NOW).earlier
    return server, ledger, gather_evidence(session, store, listing, candidates)


def test_header_block_is_what_top_n_0_sends():
    assert header_block(A) == b"Message-ID: <a@x>\r\nSubject: A\r\n\r\n"
    assert header_block(b"S: x\nT: y\n\nbody\n") == b"S: x\nT: y\n\n"
    assert header_block(b"S: no body\r\n") == b"S: no body\r\n"
    assert header_block(b"\r\nbody only\r\n") == b"\r\n"


def test_keep_deletes_nothing():
    _, ledger, evidence = _evidence(MemoryStore(), [], [A], [b"a"])
    assert plan_deletions(_box(), ledger, {1: 9}, evidence, now=NOW) == {}


def test_an_earlier_copy_with_its_size_and_header_block_is_proven_by_top():
    store = MemoryStore()
    _stored(store, A)
    server, ledger, evidence = _evidence(store, [_entry(1, b"a", A)], [A], [b"a"])
    assert evidence.proven == {1: 1} and evidence.fetch == {}
    assert server.commands("TOP") == ["TOP 1 0"]
    box = _box(delete_after_archive=True)
    assert plan_deletions(box, ledger, {}, evidence, now=NOW) == {1: 1}


def test_a_reused_unique_id_of_the_same_size_is_not_evidence():
    store = MemoryStore()
    _stored(store, A)
    # B is listed under A's exact unique-id, with A's size: only its headers tell.
    _, ledger, evidence = _evidence(store, [_entry(1, b"a", A)], [B], [b"a"])
    assert evidence.proven == {} and list(evidence.fetch) == [1]
    box = _box(delete_after_archive=True)
    assert plan_deletions(box, ledger, {}, evidence, now=NOW) == {}


def test_a_different_size_is_retrieved_without_asking_top():
    store = MemoryStore()
    _stored(store, A)
    longer = A + b"more\r\n"
    server, _, evidence = _evidence(store, [_entry(1, b"a", A)], [longer], [b"a"])
    assert list(evidence.fetch) == [1] and server.commands("TOP") == []


def test_without_top_an_earlier_copy_is_retrieved_and_hashed():
    store = MemoryStore()
    _stored(store, A)
    _, ledger, evidence = _evidence(store, [_entry(1, b"a", A)], [A], [b"a"], top=False)
    assert evidence.proven == {} and list(evidence.fetch) == [1]
    box = _box(delete_after_archive=True)
    # Retrieved in this session as that very row: now it may go.
    assert plan_deletions(box, ledger, {1: 1}, evidence, now=NOW) == {1: 1}
    # Retrieved, but it hashed to another row (a different message): the old row is no proof.
    older = _box(delete_older_than_days=1)
    assert plan_deletions(older, ledger, {1: 7}, evidence, now=NOW + timedelta(days=2)) == {}


@pytest.mark.parametrize("damage", ["missing", "mismatch"])
def test_a_damaged_stored_original_is_no_evidence_and_is_marked_for_repair(damage):
    store = MemoryStore()
    sha = _stored(store, A)
    if damage == "missing":
        store.delete(raw_key(sha))
    else:
        store.put(raw_key(sha), io.BytesIO(B), len(B))
    server, _, evidence = _evidence(store, [_entry(1, b"a", A)], [A], [b"a"])
    assert evidence.proven == {} and list(evidence.fetch) == [1]
    assert evidence.damaged[1].state is ObjectState(damage)
    assert server.commands("TOP") == []


def test_withheld_numbers_are_never_deleted():
    _, ledger, evidence = _evidence(MemoryStore(), [], [A, B], [b"a", b"b"])
    box = _box(delete_after_archive=True)
    assert plan_deletions(box, ledger, {1: 5, 2: 6}, evidence, withheld={2}, now=NOW) == {1: 5}


def test_older_than_counts_days_from_first_archived():
    store = MemoryStore()
    _stored(store, A)
    _stored(store, B)
    entries = [_entry(1, b"old", A, 31), _entry(2, b"young", B, 29)]
    server, session, listing = _source([A, B], [b"old", b"young"])
    ledger = Ledger(entries).session(listing)
    box = _box(delete_older_than_days=30)
    candidates = allowed_by_policy(box, ledger, {}, now=NOW).earlier
    assert list(candidates) == [1]
    evidence = gather_evidence(session, store, listing, candidates)
    assert plan_deletions(box, ledger, {}, evidence, now=NOW) == {1: 1}


def test_stored_header_reads_the_whole_original_verified():
    store = MemoryStore()
    sha = _stored(store, A)
    assert stored_header(store, sha).header == header_block(A)
    # The header block is intact but the body rotted: the verified read still says so.
    store.put(raw_key(sha), io.BytesIO(A.replace(b"first", b"FIRST")), len(A))
    assert stored_header(store, sha).check.state is ObjectState.MISMATCH
