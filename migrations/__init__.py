"""The archive's schema: Alembic's `env.py` and `versions/`, and `upgrade`, which every entry
point runs before it touches the index."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from archive.index.database import sqlalchemy_url

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """Alembic's configuration for the database at `url` (libpq or SQLAlchemy form)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["database_url"] = sqlalchemy_url(url)
    return config


def upgrade(url: str) -> None:
    """`alembic upgrade head`; env.py holds an advisory lock while it runs."""
    command.upgrade(alembic_config(url), "head")
