"""The archive's schema: Alembic's `env.py` and `versions/`, and `upgrade`, which every entry
point runs before it touches the index."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg
    from alembic.config import Config
    from sqlalchemy import Engine

SCRIPT_LOCATION = Path(__file__).resolve().parent

HEAD = "0012"
"""The newest revision in versions/ (a unit test keeps it equal to Alembic's head): lets a
command see that the schema is current without importing Alembic (~1 s of start-up)."""


def alembic_config(url: str) -> Config:
    """Alembic's configuration for the database at `url` (libpq or SQLAlchemy form)."""
    from alembic.config import Config

    from archive.index.database import sqlalchemy_url

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["database_url"] = sqlalchemy_url(url)
    return config


def upgrade(url: str) -> None:
    """`alembic upgrade head`; env.py holds an advisory lock while it runs."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def is_current(engine: Engine) -> bool:
    """Whether the database is at HEAD, read from Alembic's version table in one query."""
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM mailarchive.alembic_version"))
            return [row[0] for row in versions] == [HEAD]
    except ProgrammingError:  # no schema or no version table yet
        return False


def is_current_libpq(conn: psycopg.Connection[Any]) -> bool:
    """`is_current` over a psycopg connection (no SQLAlchemy); leaves no transaction open."""
    import psycopg

    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT version_num FROM mailarchive.alembic_version")
            versions = [row[0] for row in cursor.fetchall()]
    except psycopg.errors.UndefinedTable:  # no schema or no version table yet
        versions = []
    conn.rollback()
    return versions == [HEAD]


def ensure_current(url: str, engine: Engine) -> None:
    """Upgrade only when the schema is behind: the common case costs one query, not Alembic."""
    if not is_current(engine):
        upgrade(url)
