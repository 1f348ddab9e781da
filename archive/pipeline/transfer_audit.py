"""The audit row of an export or import: one per successful run, with its query or source
and its counts (`archive.audit`). The export's own pages read through the unrecorded search
functions, so one export is one audit row, not one per page."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Engine

from archive.index import audit


def record_transfer(engine: Engine, kind: Literal["export", "import"], summary: str) -> None:
    """Append the audit row of a finished export or import, in a transaction of its own."""
    with engine.connect() as conn, conn.begin():
        audit.record(conn, kind, {"summary": summary})
