"""The hook exports and imports call for the audit trail (issue 14, migration 0009, another
change's): `record_transfer` is a no-op until `archive.audit` exists, and then appends one
row per export or import (kind, the summary line with its query and counts)."""

from __future__ import annotations

from sqlalchemy import Engine


def record_transfer(engine: Engine, kind: str, summary: str) -> None:
    """Append an audit row for an export or import. No-op: the audit table is not there yet."""
    del engine, kind, summary
