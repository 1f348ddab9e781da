"""Alembic environment: the only code that writes the archive's schema.

The URL comes from the caller (`migrations.upgrade`) or, for `alembic` on the
command line, from the same settings the application uses. A transaction-level advisory lock
serialises concurrent upgrades (two workers starting at once), and lock and statement
timeouts keep a migration from hanging behind a long query.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from archive.config import load_settings
from archive.index.database import database_url, map_errors, sqlalchemy_url
from archive.index.models import Base
from archive.index.schema import SCHEMA

MIGRATION_LOCK_KEY = 0x6D61696C  # "mail"


def _url() -> str:
    url = context.config.attributes.get("database_url")
    if url:
        return str(url)
    # `alembic` on the command line: the same settings the application reads.
    settings = load_settings()
    return sqlalchemy_url(database_url(settings.database_url, settings.data_dir))


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return True


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    map_errors(engine)
    with engine.connect() as connection:
        connection.execute(text("SET lock_timeout = '30s'"))
        connection.execute(text("SET statement_timeout = '10min'"))
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table_schema=SCHEMA,
            include_schemas=True,
            include_name=include_name,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
