"""One mailbox run's state (`MailboxRun`), and the steps of a session that change only it:
settling a repair, confirming deletions by absence, and the QUIT of a session that marked
nothing for deletion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from archive.config import MailboxConfig
from archive.errors import Pop3ConnectionError, Pop3ServerError, Pop3TemporaryError
from archive.pipeline.evidence import Evidence
from archive.pipeline.ledger import Ledger, SessionLedger
from archive.pipeline.ports import MailboxLedgerIndex
from archive.pipeline.result import MailboxResult, Tally
from archive.pop3.source import Endpoint, MailSource
from archive.pop3.uidl import uidl_text

log = logging.getLogger("archive.pipeline.archiver")


@dataclass
class MailboxRun:
    """One mailbox run's state, shared by its sessions."""

    box: MailboxConfig
    endpoint: Endpoint
    password: str = field(repr=False)
    index: MailboxLedgerIndex
    ledger: Ledger
    progress: Callable[[MailboxResult], None] | None
    tally: Tally = field(default_factory=Tally)

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.tally.result(self.box.name))


def settle_repair(run: MailboxRun, evidence: Evidence, number: int, row: int) -> bool:
    """A copy retrieved because its stored original was missing or damaged: True if its
    bytes were that original (the archiver stored them verified: repaired); False, and it is
    never deleted, if the server's message hashes to anything else."""
    check = evidence.damaged.get(number)
    if check is None:
        return True
    entry = evidence.fetch[number]
    if row == entry.id:
        run.tally.repaired += 1
        log.warning(
            "mailbox %s: stored original %s was %s; repaired from the server's copy",
            run.box.name,
            entry.sha256,
            check.state,
        )
        return True
    run.tally.unrepaired.append(
        f"sha256 {entry.sha256} ({check.state}) under UIDL {uidl_text(entry.uidl)}: the "
        f"server's message {number} hashes to {run.ledger.by_id(row).sha256}"
    )
    return False


def reconcile(run: MailboxRun, session: SessionLedger) -> None:
    """DELEs acknowledged but never confirmed by QUIT: gone now means deleted then."""
    gone = session.confirmed_by_absence()
    if gone:
        log.info(
            "mailbox %s: %d earlier deletions confirmed by their absence",
            run.box.name,
            len(gone),
        )
        run.ledger.stamp(run.index.mark_deleted(gone), "deleted_at")


def quit_keeping(run: MailboxRun, source: MailSource) -> None:
    """QUIT a session that marked nothing for deletion: its answer changes nothing.

    Some servers close the connection instead of answering QUIT, or answer -ERR. With no
    DELE acknowledged, the only thing UPDATE could remove is what `EXPIRE 0` expires, and
    every retrieved message was committed before QUIT: nothing is lost either way, so the
    run goes on and the result carries a note.
    """
    try:
        source.quit()
    except (Pop3ServerError, Pop3ConnectionError, Pop3TemporaryError) as exc:
        log.warning("%s (nothing was marked for deletion; nothing lost)", exc)
        note = "QUIT not confirmed by the server; nothing was marked for deletion"
        if note not in run.tally.notes:
            run.tally.notes.append(note)
    finally:
        source.close()
