"""The hot path's statements on the driver's cursor, under SQLAlchemy's transaction.

Per archived message the mailbox thread runs a few fixed statements (`archive.index.writes`,
`archive.index.texts`). Through `Connection.exec_driver_sql` each one built an execution
context, a result and its metadata: about 0.3 ms of the GIL a statement on the benchmark
machine, more than the work (docs/benchmarks.md, "Index writes"). Here they run on one psycopg
cursor per database connection, kept in the connection's `info` (it lives as long as the
driver's connection and is cleared when SQLAlchemy replaces it), prepared on first use
(`prepare=True`; the statement texts never change).

What stays SQLAlchemy's: the transaction (a statement here runs in the one the caller began,
`Connection.begin()`; psycopg opens it implicitly and SQLAlchemy's commit or rollback ends
it), and errors: a driver error goes through the connection's own handling, so the engine's
`handle_error` hook (`archive.index.database.map_errors`) maps it exactly as on every other
path (`DatabaseUnavailable` for a lost connection and the transient SQLSTATEs, else a
one-line `DBAPIError` with `.orig.sqlstate`), and a lost connection is invalidated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import Connection

__all__ = ["execute", "fetch_all", "fetch_one"]

Params = Mapping[str, Any] | Sequence[Any]
Row = tuple[Any, ...]

_CURSOR = "mailarchive.prepared_cursor"


def _cursor(conn: Connection) -> psycopg.Cursor[Row]:
    info = conn.info
    cursor: psycopg.Cursor[Row] | None = info.get(_CURSOR)
    if cursor is None or cursor.closed:
        # The engine's driver is always psycopg (archive.index.database.sqlalchemy_url).
        driver = cast("psycopg.Connection[Row]", conn.connection.dbapi_connection)
        cursor = driver.cursor()
        info[_CURSOR] = cursor
    return cursor


def _run(conn: Connection, sql: str, params: Params) -> psycopg.Cursor[Row]:
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, params, prepare=True)
    except psycopg.Error as exc:
        # SQLAlchemy's own handling: the handle_error hooks, invalidation of a lost
        # connection, and the wrapped (or mapped) exception raised from `exc`.
        conn._handle_dbapi_exception(exc, sql, params, None, None)
    return cursor


def fetch_one(conn: Connection, sql: str, params: Params) -> Row | None:
    """The first row `sql` returns, or None; errors as `Connection.execute` raises them."""
    cursor = _run(conn, sql, params)
    try:
        return cursor.fetchone()
    except psycopg.Error as exc:
        conn._handle_dbapi_exception(exc, sql, params, None, None)


def fetch_all(conn: Connection, sql: str, params: Params) -> list[Row]:
    """Every row `sql` returns; errors as `Connection.execute` raises them."""
    cursor = _run(conn, sql, params)
    try:
        return cursor.fetchall()
    except psycopg.Error as exc:
        conn._handle_dbapi_exception(exc, sql, params, None, None)


def execute(conn: Connection, sql: str, params: Params) -> None:
    """Run `sql` for its effect; errors as `Connection.execute` raises them."""
    _run(conn, sql, params)
