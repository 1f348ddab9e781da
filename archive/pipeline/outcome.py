"""A mailbox run's result from its tally: what `Archiver.run` returns or raises.

Kept apart from the archiver so the one place that words a run's outcome (its error, its
note, its log line) is small and read on its own.
"""

from __future__ import annotations

import logging
import time

from archive.config import MailboxConfig
from archive.errors import ArchiveError, is_transient
from archive.pipeline.records import summary_of
from archive.pipeline.result import MailboxFailed, MailboxResult, Tally

log = logging.getLogger("archive.pipeline.archiver")


def failed(
    box: MailboxConfig, tally: Tally, started: float, note: str | None, exc: Exception
) -> MailboxFailed:
    """The MailboxFailed to raise for a run that ended in `exc`, with its partial counts.

    An error of the archive's tree keeps its words; anything else is named as unexpected.
    """
    error = (
        str(exc)
        if isinstance(exc, ArchiveError)
        else (f"mailbox {box.name!r}: unexpected {type(exc).__name__}: {exc}")
    )
    result = tally.result(
        box.name,
        seconds=time.monotonic() - started,
        note=note,
        error=error,
        transient=is_transient(exc),
    )
    log.error("mailbox %s failed: %s", box.name, result.error)
    return MailboxFailed(result, summary_of(box.name, exc))


def finished(box: MailboxConfig, tally: Tally, started: float, note: str | None) -> MailboxResult:
    """The result of a run that got to its end.

    Raises MailboxFailed when stored originals found damaged could not be repaired from
    the server: the run did its work, but the archive is not whole.
    """
    if tally.unrepaired:
        result = tally.result(
            box.name,
            seconds=time.monotonic() - started,
            note=note,
            error=f"mailbox {box.name!r}: {len(tally.unrepaired)} stored originals could "
            f"not be repaired from the server: {'; '.join(tally.unrepaired)}",
        )
        log.error("mailbox %s failed: %s", box.name, result.error)
        raise MailboxFailed(result)
    if tally.relabelled:
        reset = (
            f"UIDL reset: {tally.relabelled} archived messages are listed under new UIDLs; "
            "ledger relabelled, nothing stored twice"
        )
        log.warning("mailbox %s: %s", box.name, reset)
        note = f"{reset}; {note}" if note else reset
    result = tally.result(box.name, seconds=time.monotonic() - started, note=note)
    log.info(
        "mailbox %s: %d listed, %d new, %d archived, %d duplicates, %d deleted%s",
        box.name,
        result.listed,
        result.new,
        result.archived,
        result.duplicates,
        result.deleted,
        f" ({result.note})" if result.note else "",
    )
    return result
