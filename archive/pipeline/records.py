"""The record a mailbox run leaves as it ends (`archive.index.runs`), built from its result.

The record keeps the archive's own error messages, which name the mailbox, UIDL or hash and
never a secret; of any other exception only its type, since its text might hold one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from archive.config import MailboxConfig
from archive.errors import ArchiveError
from archive.index.runs import RunRecord, error_summary
from archive.pipeline.ports import Runs
from archive.pipeline.result import MailboxResult

log = logging.getLogger("archive.pipeline.archiver")


def summary_of(mailbox: str, exc: BaseException) -> str:
    """What the record says of the exception that failed a run of `mailbox`."""
    if isinstance(exc, ArchiveError):
        return str(exc)
    return f"mailbox {mailbox!r}: unexpected {type(exc).__name__} (see the run's log)"


def run_record(
    box: MailboxConfig, started_at: datetime, result: MailboxResult, error: str | None
) -> RunRecord:
    """The record of one run (an attempt) of `box`, from its result; `error` summarised."""
    return RunRecord(
        mailbox=box.name,
        host=box.host,
        username=box.username,
        started_at=started_at,
        finished_at=started_at + timedelta(seconds=result.seconds),
        status=result.status,
        listed=result.listed,
        new=result.new,
        archived=result.archived,
        duplicates=result.duplicates,
        deleted=result.deleted,
        failed_messages=result.failed_messages,
        bytes=result.bytes,
        interrupted=result.interrupted,
        error=error_summary(error),
    )


def keep_record(
    runs: Runs | None,
    box: MailboxConfig,
    started_at: datetime,
    result: MailboxResult,
    error: str | None,
) -> None:
    """Write the run's record. A record that cannot be written (the database is down)
    leaves the run's result as it is; the log says so."""
    if runs is None:
        return
    try:
        runs.record(run_record(box, started_at, result, error))
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ArchiveError) else type(exc).__name__
        log.warning("mailbox %s: the record of this run was not written: %s", box.name, reason)
