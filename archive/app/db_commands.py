"""Commands on the archive database itself: `psql`, `migrate`, and `db url|start|stop|status`."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from archive.app.console import command_settings, fail, out

db_commands = typer.Typer()
db_app = typer.Typer(
    help="The archive database (embedded PostgreSQL unless a URL is set).", no_args_is_help=True
)
db_commands.add_typer(db_app, name="db")


# Everything after `psql` is psql's: options it does not know are not typer's to refuse.
@db_commands.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
def psql(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PSQL_ARGS",
            help="Passed to psql as given: mailarchive psql -c 'SELECT 1'",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Open psql on the archive database (the bundled psql when embedded)."""
    from archive.index.database import database_url, psql_binary

    settings = command_settings()
    url = database_url(settings.database_url, settings.data_dir)
    binary = psql_binary()
    os.execv(binary, [binary, url, *(args or [])])


@db_commands.command()
def migrate() -> None:
    """Bring the archive schema to the current version (runs by itself on first use)."""
    import migrations
    from archive.index.database import database_url, redact_url

    settings = command_settings()
    url = database_url(settings.database_url, settings.data_dir)
    migrations.upgrade(url)
    out.print(f"schema is current in {redact_url(url)}", highlight=False)


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL of the archive database (starts the embedded server)."""
    from archive.index.database import database_url

    settings = command_settings()
    sys.stdout.write(database_url(settings.database_url, settings.data_dir) + "\n")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL server (commands start it by themselves when needed)."""
    from archive.index.database import start_embedded

    settings = command_settings()
    if settings.database_url:
        fail("MAILARCHIVE_DATABASE_URL is set: that server is not ours to start")
    out.print(f"embedded PostgreSQL running: {start_embedded(settings.data_dir)}", highlight=False)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from archive.index.database import stop_embedded

    settings = command_settings()
    if settings.database_url:
        fail("MAILARCHIVE_DATABASE_URL is set: that server is not ours to stop")
    stopped = stop_embedded(settings.data_dir)
    out.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db_app.command("status")
def db_status() -> None:
    """Where the archive database is, whether it answers, its schema version and size.

    Does not start the embedded server. Exits 1 if the database does not answer.
    """
    from archive.index.database import embedded_pgdata, redact_url

    settings = command_settings()
    if settings.database_url:
        where, url = "external", settings.database_url
    else:
        pgdata = embedded_pgdata(settings.data_dir)
        where = f"embedded, data in {pgdata}"
        if not (pgdata / "postmaster.pid").exists():
            out.print(f"database: {where}\nstate:    stopped (`mailarchive db start`)")
            raise typer.Exit(1)
        from archive.index.database import start_embedded

        url = start_embedded(settings.data_dir)
    out.print(f"database: {where}\nurl:      {redact_url(url)}", highlight=False)
    problem, facts = _probe(url)
    if problem is not None:
        out.print(f"state:    not answering ({problem})", highlight=False)
        raise typer.Exit(1)
    for label, value in facts:
        out.print(f"{label + ':':<10}{value}", highlight=False)


def _probe(url: str) -> tuple[str | None, list[tuple[str, str]]]:
    import migrations
    from archive.app.report import human_bytes
    from archive.index.database import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        from archive.errors import ArchiveError

        try:
            with engine.connect() as conn:
                size = conn.execute(text("SELECT pg_database_size(current_database())"))
                db_bytes = int(size.scalar_one())
        except DBAPIError as exc:
            return type(exc.orig).__name__, []
        except ArchiveError as exc:
            return str(exc), []
        current = migrations.is_current(engine)
    finally:
        engine.dispose()
    schema = f"current ({migrations.HEAD})" if current else "behind: run `mailarchive migrate`"
    return None, [("state", "answering"), ("schema", schema), ("size", human_bytes(db_bytes))]
