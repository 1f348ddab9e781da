"""The archive database over libpq alone (psycopg, no SQLAlchemy), for a command whose
start-up time is most of its run: `mailarchive search` (SQLAlchemy's import is ~0.4 s).

Errors are mapped as `archive.index.database.map_errors` maps them for an engine: what a
later attempt may clear is the transient `DatabaseUnavailable`, with the first line of the
driver's message; the rest stays psycopg's own error, its SQLSTATE readable.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg

from archive.errors import ArchiveError, ConfigError, DatabaseUnavailable
from archive.index.database import transient_reason

__all__ = ["connect", "libpq_url", "unavailable"]

_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def libpq_url(url: str) -> str:
    """The URL libpq takes: `postgresql+psycopg://` (SQLAlchemy's form) made `postgresql://`;
    any other driver is refused, as `sqlalchemy_url` refuses it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError("MAILARCHIVE_DATABASE_URL is not a valid database URL") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            f"MAILARCHIVE_DATABASE_URL: unsupported driver {parts.scheme!r}; use postgresql://"
        )
    return urlunsplit(parts._replace(scheme="postgresql"))


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """One connection to the archive database at `url` (libpq or SQLAlchemy form)."""
    try:
        return psycopg.connect(libpq_url(url), application_name="mailarchive")
    except psycopg.Error as exc:
        unavailable(exc)
        # A refusal from the server (no such role or database, a wrong password): in words.
        detail = str(exc).strip().splitlines()
        raise ArchiveError(
            f"archive database: {detail[0] if detail else type(exc).__name__}"
        ) from None


def unavailable(exc: psycopg.Error) -> None:
    """Raise `DatabaseUnavailable` if `exc` is worth another attempt, as an engine would."""
    reason = transient_reason(exc)
    if reason is not None:
        detail = str(exc).strip().splitlines()
        raise DatabaseUnavailable(
            f"database unavailable ({reason}): {detail[0] if detail else 'no detail'}"
        ) from None
