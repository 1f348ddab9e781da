"""`mailarchive`: the one command-line entry point (typer + rich).

Commands that run the archive go through the Prefect flow in `flows/`, imported only when
such a command runs, so `cat`, `psql` and `--help` stay fast and the core stays Prefect-free.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from archive.app.compliance_commands import compliance_commands
from archive.app.console import (
    JsonOption,
    command_settings,
    debugging,
    err,
    fail,
    no_tracebacks_on_terminal,
    out,
    plain_help,
    print_error,
    print_json,
    quiet_terminal_logs,
    set_debug,
)
from archive.app.db_commands import db_commands
from archive.app.mailbox_commands import mailbox_commands
from archive.app.prefect_env import prefect_api_url, prefect_defaults, require_prefect_api
from archive.app.repair_command import repair_app
from archive.app.schedule_commands import schedule_commands
from archive.app.search_commands import search_commands
from archive.app.status_commands import status_commands
from archive.app.store_commands import store_app
from archive.app.transfer_commands import transfer_commands
from archive.errors import ArchiveError, ConfigError
from archive.pipeline.stop import Stop, stopping_on_signals

if TYPE_CHECKING:
    from archive.config import MailboxFile, Settings


app = typer.Typer(
    name="mailarchive",
    help=(
        "Archive POP3 mailboxes byte for byte into object storage, indexed in PostgreSQL.\n\n"
        "With no configuration, the archive lives under the user data dir: an embedded "
        "PostgreSQL and a local object folder. Set MAILARCHIVE_DATABASE_URL and "
        "MAILARCHIVE_STORE_URL (file:///path or s3://bucket) to use your own."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(store_app)  # cat, verify, gc: top-level commands
app.add_typer(repair_app)  # repair: a top-level command
app.add_typer(search_commands)  # search
app.add_typer(db_commands)  # psql, migrate, db …
app.add_typer(status_commands)  # status
app.add_typer(mailbox_commands)  # mailbox forget
app.add_typer(schedule_commands)  # schedule show|pause|resume
app.add_typer(transfer_commands)  # export, import
app.add_typer(compliance_commands)  # retention, hold …, audit …


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"mailarchive {version('mailarchive')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show tracebacks for expected failures (a mailbox, the database) and every "
            "log line of a run, for a bug report.",
        ),
    ] = False,
) -> None:
    """Options before any command."""
    if debug:
        set_debug()


ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="Mailbox file: \\[\\[mailbox]] tables; every key is in docs/mailboxes.md.",
        exists=False,
        dir_okay=False,
    ),
]


def run_flow(
    config: Path,
    mailboxes: list[str] | None,
    settings: Settings | None = None,
    archive_file: MailboxFile | None = None,
    stop: Stop | None = None,
) -> tuple[bool, list[dict[str, Any]]]:
    """Run `archive-mailboxes` in this process, handing it what this command built already;
    on a terminal, a progress bar per mailbox on stderr while it runs."""
    prefect_defaults()
    from archive.app.run_progress import progress_display
    from flows.archive_flow import Prepared, run_archive

    if not debugging():
        no_tracebacks_on_terminal()  # after Prefect has set up its logging
        quiet_terminal_logs()
    if prefect_api_url() is None:
        err.print(
            "PREFECT_API_URL is not set: starting a temporary Prefect server for this run"
            " (20-40 s; `mailarchive server` keeps one running)",
            highlight=False,
        )
        from flows.temporary_server import end_temporary_servers, temporary_server_apart

        # Ctrl-C stops the run, which still reports to the server: it must not stop the server.
        temporary_server_apart()
        if stop is not None:
            stop.at_once.append(end_temporary_servers)
    with progress_display(err, settings.retries if settings is not None else None) as display:
        prepared = Prepared(settings, archive_file, stop, display) if settings is not None else None
        return run_archive(config, mailboxes, prepared)


def _load_checked(config: Path, mailbox: list[str] | None) -> MailboxFile:
    """Everything that can be checked before a run: the file, names, password sources."""
    from archive.config import check_password_sources, load_mailbox_file

    try:
        archive_file = load_mailbox_file(config)
        check_password_sources(archive_file.select(mailbox), placed_in=archive_file)
    except ConfigError as exc:
        fail(str(exc))
    return archive_file


@app.command()
def run(
    config: ConfigOption,
    mailbox: Annotated[
        list[str] | None,
        typer.Option("--mailbox", "-m", help="Only this mailbox (repeatable)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Archive the mailboxes in a mailbox file through the Prefect flow `archive-mailboxes`.

    Runs in this process, reporting to PREFECT_API_URL if set (else a temporary Prefect
    server). Exits 1 if any mailbox failed, 2 on a configuration error, 3 if the Prefect
    server is unreachable. SIGTERM or Ctrl-C (SIGINT) stops the run: no new session, RETR
    or DELE; what was committed is printed, marked interrupted, and the exit code is 143
    (SIGTERM) or 130 (SIGINT). A second signal ends the process at once.
    """
    settings = command_settings()
    stop = Stop()
    with stopping_on_signals(stop):
        archive_file = _load_checked(config, mailbox)
        require_prefect_api(prefect_api_url(), needed=False)
        ok, results = run_flow(config, mailbox, settings, archive_file, stop)
    interrupted = stop.signal_name or ("stop" if stop.is_set() else None)
    if as_json:
        payload: dict[str, Any] = {"mailboxes": results, "interrupted": interrupted}
        if interrupted:
            payload["exit_code"] = stop.exit_code()
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        from archive.app.run_view import print_results

        print_results(out, results, interrupted=interrupted)
    if interrupted:
        raise typer.Exit(stop.exit_code())
    if not ok:
        raise typer.Exit(1)


@app.command()
def serve(
    config: ConfigOption,
    name: Annotated[
        str | None,
        typer.Option(help="Deployment name: archive-mailboxes/NAME (default: the file's stem)."),
    ] = None,
) -> None:
    """Register `archive-mailboxes/NAME` and run its flow runs until stopped (Ctrl-C, SIGTERM).

    The schedule is the file's top-level `schedule` (cron) and `timezone`. One run at a time:
    a run that would overlap waits for the one before it (a scheduled one ends, saying so).
    Stopping does not pause the schedule; `mailarchive schedule pause NAME` does. Trigger a
    run from the UI, with `prefect deployment run archive-mailboxes/NAME`, or `mailarchive
    run`. Needs PREFECT_API_URL (see `mailarchive server`); exits 3 if it does not answer.
    """
    archive_file = _load_checked(config, None)
    require_prefect_api(prefect_api_url(), needed=True)
    from flows.deployments import serve_mailbox_file

    deployment = name or config.stem
    schedule = archive_file.schedule or "no schedule (trigger runs by hand)"
    err.print(f"serving archive-mailboxes/{deployment}: {escape(schedule)}", highlight=False)
    serve_mailbox_file(config, archive_file, deployment)


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the UI and API.")] = 4200,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=(
                "PostgreSQL URL of Prefect's own database (also "
                "PREFECT_SERVER_DATABASE_CONNECTION_URL). Default: database `prefect` beside "
                "the archive's, created if missing."
            ),
        ),
    ] = None,
) -> None:
    """Start a local Prefect server with its UI, on PostgreSQL; Ctrl-C or SIGTERM stops it."""
    from archive.app.prefect_server import plan_server

    try:
        plan = plan_server(command_settings(), host, port, database_url)
    except ConfigError as exc:
        fail(str(exc))
    err.print(f"Prefect database: {escape(plan.database)}", highlight=False, soft_wrap=True)
    err.print(f"Prefect UI:       {plan.ui_url}", highlight=False)
    err.print(f"For other shells: export PREFECT_API_URL={plan.api_url}", highlight=False)
    sys.stderr.flush()
    # Replace this process: Ctrl-C and SIGTERM reach the server itself, which shuts down cleanly.
    os.execve(plan.argv[0], plan.argv, plan.env)


@app.command()
def demo(
    mailboxes: Annotated[int, typer.Option(help="How many demo mailboxes.")] = 3,
    messages: Annotated[int, typer.Option(help="Messages per mailbox.")] = 100,
    reset: Annotated[
        bool, typer.Option("--reset", help="Remove the demo archive first and start afresh.")
    ] = False,
) -> None:
    """Archive generated mail from a local POP3 server: no mail account needed.

    Starts the project's own POP3 test server on 127.0.0.1, seeded with realistic generated
    mail (HTML, attachments, non-ASCII names), runs the real Prefect flow against it, and
    prints what was archived and SQL to try in psql. Run it twice: the second run finds
    nothing new. The demo archives into its own data dir (<data dir>/demo, its own embedded
    PostgreSQL and objects), never into the archive MAILARCHIVE_* points at.
    """
    from archive.app.demo import demo_settings, reset_demo, run_demo

    settings = demo_settings(command_settings())
    try:
        if reset and reset_demo(settings):
            out.print(f"removed the demo archive in {settings.data_dir}", highlight=False)
        run_demo(
            settings, mailboxes, messages, out, lambda path, names: run_flow(path, names, settings)
        )
    except ArchiveError as exc:
        fail(str(exc), 1)


@app.command()
def reindex(
    all_messages: Annotated[
        bool, typer.Option("--all", help="Re-parse every message, not only outdated ones.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Messages per batch.", min=1)] = 200,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the index of messages parsed by an older parser, from the stored originals,
    and extract the text of attachments archived before extraction (or by an older one).

    Resumable: each message is rewritten in its own transaction and marked with the parser
    version, so an interrupted run goes on where it stopped. Exits 1 if an original is missing.
    """
    from archive.pipeline.build import make_extractor, open_database
    from archive.pipeline.reindex import mark_all_stale
    from archive.pipeline.reindex import reindex as run_reindex
    from archive.store import open_store

    settings = command_settings()
    _, engine = open_database(settings, pool_size=1)
    extractor = make_extractor(settings)
    try:
        if all_messages:
            mark_all_stale(engine)
        result = run_reindex(
            engine,
            open_store(settings.resolved_store_url),
            settings.parse_limits(),
            batch_size=batch_size,
            max_bytes=settings.parse_max_bytes,
            progress=lambda done: (
                err.print(f"reindexed {done}", highlight=False) if not as_json else None
            ),
            extractor=extractor,
        )
    finally:
        extractor.close()
        engine.dispose()
    if as_json:
        print_json(
            {
                "reindexed": result.reindexed,
                "remaining": result.remaining,
                "failed": list(result.failed),
            }
        )
    else:
        out.print(f"reindexed {result.reindexed} messages, {result.remaining} left")
    for problem in result.failed:
        err.print(f"[red]failed:[/] {escape(problem)}", highlight=False)
    if result.failed:
        raise typer.Exit(1)


def command() -> Any:
    """The click command `main` runs: the typer app with plain metavars in its help."""
    return plain_help(typer.main.get_command(app))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        command()(prog_name="mailarchive")
    except ArchiveError as exc:
        if debugging():
            raise
        # An error of the tree says what went wrong in words; a traceback adds nothing.
        print_error(str(exc))
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
