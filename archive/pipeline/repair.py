"""Repair: store damaged or missing originals again from the servers that still hold them.

`verify` finds the originals whose stored bytes are missing or hash wrong. For each mailbox
whose ledger lists one of them (a row not yet deleted from the server), one POP3 session,
taken like an archive run's (the mailbox lock, a host slot, LOGIN-DELAY respected), lists the
maildrop. A message under the row's unique-id octets with the archived LIST size, whose
`TOP n 0` header block carries the Message-ID the index holds for the original (the
damaged original itself has no header block to compare; without TOP this step is
skipped), is retrieved, and only if its bytes hash to the ledger's SHA-256 is it stored
(`put_verified` rewrites the damaged object and reads it back): the hash decides. Nothing
is marked for deletion; the session ends with QUIT only to release the maildrop.

What is not repaired is said, with why: no mailbox still holds it, the server's message
hashes to something else, the store cannot be read, or the object is an attachment part
(parts are cut from their original: `mailarchive reindex --all` stores them again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from archive.config import MailboxConfig, SecretLookup, resolve_password
from archive.errors import ArchiveError, Pop3ServerError
from archive.index.messages import clean
from archive.index.objects import message_ids
from archive.mime import parse_message
from archive.pipeline.archiver import Archiver
from archive.pipeline.ledger import Ledger, LedgerEntry
from archive.pipeline.verify import Finding, verify
from archive.pop3.source import MailSource
from archive.pop3.uidl import uidl_text
from archive.store import ObjectState, put_verified, raw_key

__all__ = ["RepairReport", "repair"]

log = logging.getLogger(__name__)

_REPAIRABLE = (ObjectState.MISSING, ObjectState.MISMATCH)


@dataclass
class RepairReport:
    """`repaired`: SHA-256 → the mailbox whose server copy restored it; `unrepaired`:
    SHA-256 → why not; `mailboxes`: per mailbox, what went wrong (a failed session), if."""

    damaged: int = 0
    repaired: dict[str, str] = field(default_factory=dict)
    unrepaired: dict[str, str] = field(default_factory=dict)
    mailboxes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.unrepaired

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "damaged": self.damaged,
            "repaired": self.repaired,
            "unrepaired": self.unrepaired,
            "mailboxes": self.mailboxes,
        }


def repair(
    archiver: Archiver,
    engine: Engine,
    boxes: Iterable[MailboxConfig],
    *,
    mailbox: str | None = None,
    secret_lookup: SecretLookup | None = None,
) -> RepairReport:
    """Find damaged originals (`verify`, limited to `mailbox` if given) and repair each from
    the first of `boxes` whose server still holds it."""
    findings = verify(engine, archiver.store, mailbox=mailbox, orphans=False).findings
    report = RepairReport(damaged=len(findings))
    damaged: dict[str, Finding] = {}
    for finding in findings:
        sha = finding.reference.sha256
        if finding.reference.kind != "original":
            report.unrepaired[sha] = (
                f"attachment part {finding.check.state}: `mailarchive reindex --all` cuts it "
                "from its original again"
            )
        elif finding.check.state not in _REPAIRABLE:
            report.unrepaired[sha] = f"unreadable: {finding.check.detail}"
        else:
            damaged[sha] = finding
    with engine.connect() as conn:
        expected = message_ids(conn, damaged)
    for box in boxes:
        if not damaged:
            break
        try:
            found = _repair_from(archiver, box, damaged, expected, secret_lookup)
        except ArchiveError as exc:
            report.mailboxes[box.name] = str(exc)
            log.warning("repair: mailbox %s: %s", box.name, exc)
            continue
        for sha, outcome in found.items():
            if outcome is None:
                report.repaired[sha] = box.name
                del damaged[sha]
            else:
                report.unrepaired.setdefault(sha, outcome)
    # A mailbox that could not be asked (no password, server down) may still hold it.
    unasked = ", ".join(sorted(report.mailboxes))
    for sha, finding in damaged.items():
        if sha not in report.unrepaired:
            report.unrepaired[sha] = f"{finding.check.state} ({finding.reference.label}): " + (
                f"not on the servers asked; not asked: {unasked} (see its error)"
                if unasked
                else "no configured mailbox still holds it on its server"
            )
    return report


def _repair_from(
    archiver: Archiver,
    box: MailboxConfig,
    damaged: dict[str, Finding],
    expected: dict[str, str | None],
    secret_lookup: SecretLookup | None,
) -> dict[str, str | None]:
    """One session on `box`'s server: SHA-256 → None (repaired) or why not, for the damaged
    originals its ledger still expects on the server."""
    outcome: dict[str, str | None] = {}
    with archiver.writer.mailbox(box.name, box.host, box.username) as index:
        with index.lock(box.name) as held:
            if not held:
                raise ArchiveError(f"mailbox {box.name!r}: another session holds it; try later")
            rows = [
                entry
                for entry in Ledger(index.ledger())
                if entry.sha256 in damaged and entry.deleted_at is None
            ]
            if not rows:
                return outcome
            wait = index.login_state().seconds_until_login()
            if wait > 0:
                raise ArchiveError(
                    f"mailbox {box.name!r}: server LOGIN-DELAY: next login in {wait:.0f}s"
                )
            password = resolve_password(box, secret_lookup)
            slot = index.host_slot(box.host, box.max_connections, archiver.host_slot_wait_seconds)
            with slot:
                source = archiver.connect(archiver.endpoint(box))
                try:
                    source.login(box.username, password, box.auth)
                    index.record_login(source.login_delay)
                    listing = source.listing()
                    session = Ledger(rows).session(listing)
                    sizes = {item.number: item.size for item in listing}
                    wanted: dict[int, LedgerEntry] = {}
                    for number, key in session.keys.items():
                        entry = session.ledger.get(key)
                        if entry is not None and sizes.get(number) == entry.size:
                            wanted[number] = entry
                    for number, why in _other_headers(source, wanted, expected).items():
                        outcome.setdefault(
                            wanted.pop(number).sha256, f"mailbox {box.name!r}: {why}"
                        )
                    for message in source.retrieve(sorted(wanted), archiver.retr_window):
                        entry = wanted[message.number]
                        try:
                            if message.sha256 != entry.sha256:
                                outcome.setdefault(
                                    entry.sha256,
                                    f"mailbox {box.name!r}: message {message.number} under UIDL "
                                    f"{uidl_text(entry.uidl)} hashes to {message.sha256}",
                                )
                                continue
                            put_verified(
                                archiver.store,
                                raw_key(entry.sha256),
                                message.file,
                                entry.sha256,
                                message.size,
                            )
                            outcome[entry.sha256] = None
                            log.warning(
                                "repair: %s restored from mailbox %s", entry.sha256, box.name
                            )
                        finally:
                            message.close()
                    try:
                        source.quit()  # nothing is marked: QUIT releases the maildrop
                    except Pop3ServerError as exc:
                        log.warning("%s", exc)
                except BaseException:
                    source.close()
                    raise
    return outcome


def _other_headers(
    source: MailSource, wanted: dict[int, LedgerEntry], expected: dict[str, str | None]
) -> dict[int, str]:
    """Message number → why, for the candidates whose `TOP n 0` shows another Message-ID than
    the archived original's: not worth a RETR. Without TOP, none (the hash still decides)."""
    other: dict[int, str] = {}
    for number, entry in sorted(wanted.items()):
        archived = expected.get(entry.sha256)
        if archived is None:
            continue
        try:
            top = source.top(number, 0)
        except Pop3ServerError:
            break  # TOP is optional (RFC 1939 §7)
        found = clean(parse_message(top).message_id)
        if found != archived:
            other[number] = (
                f"message {number} under UIDL {uidl_text(entry.uidl)} has Message-ID "
                f"{found!r}, the archived original {archived!r}"
            )
    return other
