"""The delete policies, with earlier copies verified against the store before DELE."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

from archive.config import MailboxConfig
from archive.pipeline.deletion import copy_is_intact, plan_deletions
from archive.pipeline.ledger import Ledger, LedgerEntry
from archive.pop3.source import Listed
from archive.store import MemoryStore, raw_key

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _box(**options: object) -> MailboxConfig:
    return MailboxConfig.model_validate(
        {"name": "box", "host": "pop.example", "username": "u", "password_env": "PW", **options}
    )


def _stored(store: MemoryStore, raw: bytes) -> str:
    sha = hashlib.sha256(raw).hexdigest()
    store.put(raw_key(sha), io.BytesIO(raw), len(raw))
    return sha


def _entry(id: int, uidl: str, sha: str, days_old: int = 0) -> LedgerEntry:
    return LedgerEntry(id, uidl, 0, id, sha, NOW - timedelta(days=days_old), None, None)


def _session(entries: list[LedgerEntry], *uidls: str):
    listed = [Listed(n, uidl, 10) for n, uidl in enumerate(uidls, start=1)]
    return Ledger(entries).session(listed)


def test_keep_deletes_nothing():
    store = MemoryStore()
    sha = _stored(store, b"old")
    session = _session([_entry(1, "a", sha, 400)], "a", "b")
    assert plan_deletions(_box(), store, session, {2: 9}, now=NOW) == {}


def test_after_archive_deletes_this_session_and_intact_earlier_copies():
    store = MemoryStore()
    intact = _stored(store, b"intact")
    corrupt = _stored(store, b"will rot")
    store.put(raw_key(corrupt), io.BytesIO(b"rotten"), 6)
    missing = hashlib.sha256(b"never stored").hexdigest()
    entries = [_entry(1, "ok", intact), _entry(2, "rot", corrupt), _entry(3, "lost", missing)]
    session = _session(entries, "ok", "rot", "lost", "fresh")
    targets = plan_deletions(_box(delete_after_archive=True), store, session, {4: 40}, now=NOW)
    assert targets == {4: 40, 1: 1}


def test_older_than_counts_days_from_first_archived():
    store = MemoryStore()
    old, young = _stored(store, b"old"), _stored(store, b"young")
    session = _session([_entry(1, "old", old, 31), _entry(2, "young", young, 29)], "old", "young")
    box = _box(delete_older_than_days=30)
    assert plan_deletions(box, store, session, {}, now=NOW) == {1: 1}


def test_copy_is_intact_reads_the_stored_bytes_back():
    store = MemoryStore()
    sha = _stored(store, b"bytes")
    assert copy_is_intact(store, sha)
    store.put(raw_key(sha), io.BytesIO(b"other"), 5)
    assert not copy_is_intact(store, sha)
    assert not copy_is_intact(store, hashlib.sha256(b"absent").hexdigest())
