"""Evidence that a listed message is an archived original, gathered before any DELE for it.

A DELE goes out only for a message number for which this session has evidence that the
server's message is a verified archived original:
- its bytes, retrieved in this session, hashed to an object that was stored and read back
  (`put_verified`, in the archiver); or
- for a message archived in an earlier run: its ledger row's unique-id octets (the key the
  listing matched), a LIST size equal to the archived size, and a `TOP n 0` header block
  byte-equal to the stored original's header block, the original read back in full with a
  verified read (`open_verified`).

A unique-id alone is never evidence: servers reuse one for another message after a maildrop
is rebuilt, and ids that differ in octets the archive once decoded away used to collide. A
size alone is not either. The header block of another message differs from the original's
(Received, Date, Message-ID), so a reused or colliding id cannot fake it. Whatever is not
proven this way is retrieved (RETR) and hashed: a server without TOP, a TOP answered -ERR, a
missing or different LIST size, different headers, and a stored original that is missing or
damaged, which the retrieval then repairs if the server's bytes hash to the ledger's SHA-256.

What Dovecot 2.3 answers to `TOP n 0` (tests/integration/test_dovecot_evidence.py): the
octets RETR sends, up to and including the first empty line, or the whole message if it has
none; `header_block` cuts the stored original the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from archive.errors import ArchiveError, IntegrityError, ObjectNotFound, Pop3ServerError
from archive.index.ledger import LedgerEntry
from archive.pop3.source import Listed, MailSource
from archive.pop3.uidl import uidl_text
from archive.store import ObjectCheck, ObjectState, ObjectStore, open_verified, raw_key
from archive.store.base import CHUNK

__all__ = ["Evidence", "StoredHeader", "gather_evidence", "header_block", "stored_header"]

log = logging.getLogger(__name__)

# A header block longer than this is not compared: the message is retrieved instead.
MAX_HEADER_BYTES = 1 << 20
_EMPTY_LINE = re.compile(rb"\n\r?\n")


def header_block(raw: bytes) -> bytes | None:
    """The octets up to and including the first empty line; the whole of `raw` if it has
    none (RFC 1939 §7 TOP: the headers, the blank line, then `n` body lines)."""
    if raw.startswith((b"\r\n", b"\n")):
        return raw[: raw.index(b"\n") + 1]
    end = _EMPTY_LINE.search(raw)
    return raw if end is None else raw[: end.end()]


@dataclass(frozen=True, slots=True)
class StoredHeader:
    """The stored original's verdict (`check`) and, if intact, its header block (`header`;
    None if it runs past `MAX_HEADER_BYTES`)."""

    check: ObjectCheck
    header: bytes | None = None


def stored_header(store: ObjectStore, sha256: str) -> StoredHeader:
    """Read the stored original back in full, verified, keeping its header block."""
    key = raw_key(sha256)
    head = bytearray()
    complete = True
    try:
        with open_verified(store, key, sha256) as stream:
            while block := stream.read(CHUNK):
                if len(head) <= MAX_HEADER_BYTES:
                    head += block
                else:
                    complete = False
    except ObjectNotFound:
        return StoredHeader(ObjectCheck(key, sha256, ObjectState.MISSING))
    except IntegrityError as exc:
        return StoredHeader(ObjectCheck(key, sha256, ObjectState.MISMATCH, str(exc)))
    except (ArchiveError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return StoredHeader(ObjectCheck(key, sha256, ObjectState.UNREADABLE, detail))
    found = header_block(bytes(head))
    if found is not None and (len(found) > MAX_HEADER_BYTES or (found == head and not complete)):
        found = None
    return StoredHeader(ObjectCheck(key, sha256, ObjectState.OK), found)


@dataclass
class Evidence:
    """What the checks found for the earlier copies the policy would delete.

    `proven`: message number → ledger row id, shown to be the archived original (size and
    header block). `fetch`: number → ledger row, to be retrieved and hashed before it may be
    deleted. `damaged`: number → the verdict on a stored original that is missing or
    damaged; its retrieval is the repair. `notes`: why copies were not proven, for the log.
    """

    proven: dict[int, int] = field(default_factory=dict)
    fetch: dict[int, LedgerEntry] = field(default_factory=dict)
    damaged: dict[int, ObjectCheck] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def gather_evidence(
    source: MailSource,
    store: ObjectStore,
    listing: list[Listed],
    candidates: Mapping[int, LedgerEntry],
) -> Evidence:
    """Check each candidate (message number → its ledger row) against the server and store."""
    sizes = {item.number: item.size for item in listing}
    evidence = Evidence()
    has_top = True
    for number, entry in sorted(candidates.items()):
        label = f"message {number} (UIDL {uidl_text(entry.uidl)}, sha256 {entry.sha256})"
        stored = stored_header(store, entry.sha256)
        if not stored.check.ok:
            # Missing or damaged: the retrieval repairs it. Unreadable (the store failed):
            # retrieved and hashed all the same, but there is nothing to call repaired.
            if stored.check.state in (ObjectState.MISSING, ObjectState.MISMATCH):
                evidence.damaged[number] = stored.check
            evidence.fetch[number] = entry
            continue
        if sizes.get(number) != entry.size:
            evidence.notes.append(
                f"{label}: LIST size {sizes.get(number)} is not the archived {entry.size}"
            )
            evidence.fetch[number] = entry
            continue
        if not has_top or stored.header is None:
            evidence.fetch[number] = entry
            continue
        try:
            top = source.top(number, 0)
        except Pop3ServerError as exc:
            # TOP is optional (RFC 1939 §7): retrieve and hash instead, for the whole session.
            log.info("%s; retrieving to compare hashes instead", exc)
            has_top = False
            evidence.fetch[number] = entry
            continue
        if top == stored.header:
            evidence.proven[number] = entry.id
        else:
            evidence.notes.append(f"{label}: TOP header block differs from the archived one")
            evidence.fetch[number] = entry
    for note in evidence.notes:
        log.warning("%s; retrieving it before any DELE", note)
    return evidence
