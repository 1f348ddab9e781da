"""The hot path's statements on the driver's cursor (archive.index.prepared) keep what
SQLAlchemy's execution gave: the caller's transaction, and errors mapped by the engine's
hook (transient `DatabaseUnavailable`, else a one-line `DBAPIError` with its SQLSTATE), a
lost connection replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from archive.errors import DatabaseUnavailable, is_transient
from archive.index import prepared
from tests.support.postgres import terminate_archive_backends


def test_a_statement_runs_in_the_callers_transaction(fresh_engine: Engine):
    with fresh_engine.connect() as conn:
        with conn.begin():
            conn.execute(text("CREATE TABLE t (n int)"))
        with pytest.raises(RuntimeError), conn.begin():
            prepared.execute(conn, "INSERT INTO t VALUES (%(n)s)", {"n": 1})
            assert prepared.fetch_all(conn, "SELECT n FROM t", {}) == [(1,)]
            raise RuntimeError("rolled back")
        with conn.begin():
            assert prepared.fetch_one(conn, "SELECT count(*) FROM t", {}) == (0,)
            prepared.execute(conn, "INSERT INTO t VALUES (%(n)s)", {"n": 2})
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalars().all() == [2]


def test_a_permanent_error_is_sqlalchemys_one_line_and_the_connection_goes_on(
    fresh_engine: Engine,
):
    with fresh_engine.connect() as conn:
        with pytest.raises(DBAPIError) as caught, conn.begin():
            prepared.fetch_one(conn, "SELECT 1 / %(zero)s", {"zero": 0})
        assert getattr(caught.value.orig, "sqlstate", None) == "22012"
        assert not is_transient(caught.value)
        assert str(caught.value) == "(psycopg.errors.DivisionByZero) division by zero"
        with conn.begin():
            assert prepared.fetch_one(conn, "SELECT %(n)s::int + 1", {"n": 1}) == (2,)


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_transient_sqlstate_is_database_unavailable(fresh_engine: Engine, sqlstate: str):
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'by the test' USING ERRCODE = '{sqlstate}'; END $$"
    with fresh_engine.connect() as conn:
        with pytest.raises(DatabaseUnavailable, match=f"SQLSTATE {sqlstate}") as caught:
            with conn.begin():
                prepared.execute(conn, raise_it, {})
    assert is_transient(caught.value)


def test_a_lost_connection_is_transient_and_replaced(fresh_db_url: str, fresh_engine: Engine):
    with fresh_engine.connect() as conn:
        with conn.begin():
            before = prepared.fetch_one(conn, "SELECT pg_backend_pid()", {})
        assert terminate_archive_backends(fresh_db_url) >= 1
        with pytest.raises(DatabaseUnavailable, match="database unavailable"):
            with conn.begin():
                prepared.fetch_one(conn, "SELECT pg_backend_pid()", {})
        assert conn.invalidated
        # A new driver connection, and a cursor of its own (not the dead one's).
        with conn.begin():
            after = prepared.fetch_one(conn, "SELECT pg_backend_pid()", {})
    assert before is not None and after is not None and after != before
