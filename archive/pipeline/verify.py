"""Verify the archive against its store, and collect the objects nothing references (gc).

`verify` re-reads stored objects and hashes them against the index: a missing object or one
whose bytes hash to anything else is a finding; so is an orphan (an object no row
references). `collect_garbage` removes orphans, but only those older than a grace period and
only while no run is writing to the store (the `store_writer` advisory lock, held shared by
every archive run and reindex, exclusive by gc), and it checks each one is still unreferenced
just before it deletes it. So gc never removes an object a running archive is about to
reference.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from archive.errors import ArchiveError
from archive.index import holds, locks
from archive.index.objects import Reference, count_references, is_referenced, references
from archive.store import (
    ObjectCheck,
    ObjectState,
    ObjectStore,
    StoredObject,
    check_object,
    part_key,
    raw_key,
)

Progress = Callable[[int, int], None]
"""progress(done, total): called after each object."""

_PREFIXES = {"raw/": "original", "parts/": "part"}


def key_of(kind: str, sha256: str) -> str:
    return raw_key(sha256) if kind == "original" else part_key(sha256)


@dataclass(frozen=True, slots=True)
class Finding:
    """One object that is not as the index says: `state` is missing, mismatch or unreadable."""

    reference: Reference
    check: ObjectCheck

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.reference.kind,
            "sha256": self.reference.sha256,
            "key": self.check.key,
            "state": str(self.check.state),
            "where": self.reference.label,
            "detail": self.check.detail,
        }


@dataclass
class VerifyReport:
    """What `verify` found. `ok` is True only if every checked object is intact."""

    checked: int = 0
    intact: int = 0
    bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    orphans: list[StoredObject] = field(default_factory=list)
    sampled: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings

    def count(self, state: ObjectState) -> int:
        return sum(1 for f in self.findings if f.check.state is state)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "intact": self.intact,
            "bytes": self.bytes,
            "missing": self.count(ObjectState.MISSING),
            "mismatched": self.count(ObjectState.MISMATCH),
            "unreadable": self.count(ObjectState.UNREADABLE),
            "orphans": len(self.orphans),
            "sampled": self.sampled,
            "findings": [f.to_dict() for f in self.findings],
            "orphan_keys": [o.key for o in self.orphans],
        }


def verify(
    engine: Engine,
    store: ObjectStore,
    *,
    mailbox: str | None = None,
    sample: int | None = None,
    orphans: bool = True,
    progress: Progress | None = None,
) -> VerifyReport:
    """Re-hash stored objects against the index.

    `mailbox` limits the check to that mailbox's messages (and their attachments); `sample`
    checks that many objects chosen at random instead of all. Orphans are looked for only in
    a whole-archive check (`mailbox` None). Never raises for a damaged object: it is a finding.
    """
    report = VerifyReport(sampled=sample is not None)
    with engine.connect() as conn:
        total = count_references(conn, mailbox)
        chosen: Iterator[Reference] | list[Reference] = references(conn, mailbox)
        if sample is not None:
            chosen = _reservoir(references(conn, mailbox), sample)
            total = len(chosen)
        referenced: set[str] = set()
        for done, ref in enumerate(chosen, 1):
            key = key_of(ref.kind, ref.sha256)
            referenced.add(key)
            verdict = check_object(store, key, ref.sha256)
            report.checked += 1
            if verdict.ok:
                report.intact += 1
                report.bytes += ref.size
            else:
                report.findings.append(Finding(ref, verdict))
            if progress is not None:
                progress(done, total)
        if orphans and mailbox is None:
            if sample is not None:
                referenced = {key_of(r.kind, r.sha256) for r in references(conn)}
            report.orphans = [
                item
                for prefix in _PREFIXES
                for item in store.scan(prefix)
                if item.key not in referenced
            ]
    return report


def _reservoir(items: Iterator[Reference], size: int) -> list[Reference]:
    """A uniform random sample of `size` items from a stream of unknown length."""
    chosen: list[Reference] = []
    for n, item in enumerate(items):
        if n < size:
            chosen.append(item)
        else:
            slot = random.randrange(n + 1)
            if slot < size:
                chosen[slot] = item
    return chosen


class StoreBusy(ArchiveError):
    """gc could not start: a run that writes objects holds the store."""


@dataclass
class GcReport:
    """Orphans found; `removed` those deleted (none in a dry run); `kept_young` those inside
    the grace period; `bytes` the size of what was (or would be) removed."""

    applied: bool
    orphans: int = 0
    removed: list[str] = field(default_factory=list)
    would_remove: list[str] = field(default_factory=list)
    kept_young: int = 0
    kept_held: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "orphans": self.orphans,
            "removed": len(self.removed),
            "would_remove": len(self.would_remove),
            "kept_young": self.kept_young,
            "kept_held": self.kept_held,
            "bytes": self.bytes,
            "keys": self.removed if self.applied else self.would_remove,
        }


def collect_garbage(
    engine: Engine,
    store: ObjectStore,
    *,
    grace: timedelta = timedelta(days=1),
    apply: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Remove stored objects that no row references and that are older than `grace`.

    A dry run (`apply` False) lists them. With `apply`, gc takes the store exclusively (the
    `store_writer` lock); if an archive run or reindex holds it, raises `StoreBusy` and
    removes nothing. Each object is checked again for references just before removal.
    Objects of messages under legal hold (archive.held_messages) are never removed.
    """
    now = now or datetime.now(UTC)
    report = GcReport(applied=apply)
    with engine.connect() as conn:
        with locks.store_collector(conn) as exclusive:
            if apply and not exclusive:
                raise StoreBusy(
                    "gc: an archive run or reindex is writing to the store; nothing removed "
                    "(run gc again when it has finished)"
                )
            with conn.begin():
                referenced = {key_of(r.kind, r.sha256) for r in references(conn)}
                held = holds.held_sha256s(conn)
            for prefix, kind in _PREFIXES.items():
                for item in store.scan(prefix):
                    if item.key in referenced:
                        continue
                    sha256 = item.key.rsplit("/", 1)[-1].removesuffix(".eml")
                    if sha256 in held:  # an object of a held message is never collected
                        report.kept_held += 1
                        continue
                    report.orphans += 1
                    if now - item.modified < grace:
                        report.kept_young += 1
                        continue
                    if not apply:
                        report.would_remove.append(item.key)
                        report.bytes += item.size
                        continue
                    with conn.begin():
                        if is_referenced(conn, kind, sha256):
                            continue
                    store.delete(item.key)
                    report.removed.append(item.key)
                    report.bytes += item.size
    return report
