"""The record of mailbox runs (`mailarchive.mailbox_run`, migration 0010): one row per run
of a mailbox (each attempt of a retried run is one), written by the archiver as it ends.
`mailarchive status` reads each mailbox's last run and last success from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from archive.index.schema import SCHEMA

__all__ = ["ERROR_SUMMARY_CHARS", "RunLog", "RunRecord", "error_summary"]

ERROR_SUMMARY_CHARS = 500


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a mailbox run came to; `error` is a summary (see `error_summary`), never the
    text of an arbitrary exception."""

    mailbox: str
    host: str
    username: str
    started_at: datetime
    finished_at: datetime
    status: str
    listed: int = 0
    new: int = 0
    archived: int = 0
    duplicates: int = 0
    deleted: int = 0
    failed_messages: int = 0
    bytes: int = 0
    interrupted: bool = False
    error: str | None = None


def error_summary(message: str | None) -> str | None:
    """The first line of an error message of the archive's own, cut to ERROR_SUMMARY_CHARS."""
    if not message:
        return None
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= ERROR_SUMMARY_CHARS else line[: ERROR_SUMMARY_CHARS - 1] + "…"


# The mailbox row normally exists (the run created it); a run that failed before that still
# gets its row, so its failure shows in `status`.
_RECORD = text(
    f"""
WITH box AS (
    INSERT INTO {SCHEMA}.mailbox (name, host, username) VALUES (:mailbox, :host, :username)
    ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id
)
INSERT INTO {SCHEMA}.mailbox_run (mailbox_id, started_at, finished_at, status, listed, new,
    archived, duplicates, deleted, failed_messages, bytes, interrupted, error)
SELECT id, :started_at, :finished_at, :status, :listed, :new, :archived, :duplicates,
    :deleted, :failed_messages, :bytes, :interrupted, :error
FROM box
"""
)


@dataclass(frozen=True)
class RunLog:
    """Writes run records to the archive database, each in its own short transaction."""

    engine: Engine

    def record(self, run: RunRecord) -> None:
        params = {name: getattr(run, name) for name in RunRecord.__slots__}
        with self.engine.begin() as conn:
            conn.execute(_RECORD, params)
