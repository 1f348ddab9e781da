"""What every command shares: the two consoles, failing with a message, the settings, and
terminal logs without tracebacks for errors that say what went wrong in words.

Imported by `mailarchive --help`: only typer and rich here; settings (pydantic) are imported
when a command asks for them.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Engine

    from archive.config import Settings

err = Console(stderr=True)
out = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
"""Every command that prints a result takes it; errors stay on stderr, exit codes the same."""


def print_json(payload: object) -> None:
    """One JSON object on one line of stdout (UTF-8 as is, dates as ISO strings)."""
    import json

    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_error(message: str) -> None:
    """`error: …` on stderr, once per line of `message` (a mailbox file's problems are one
    per line, each placed by file and line)."""
    for line in message.splitlines() or [""]:
        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: usage or configuration)."""
    print_error(message)
    raise typer.Exit(code)


def command_settings() -> Settings:
    """The command's settings, built once here and passed down."""
    from archive.config import load_settings
    from archive.errors import ConfigError

    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def open_index(settings: Settings) -> Engine:
    """An engine on the archive database for a command that reads it (one connection),
    migrating only when the schema is behind: no Alembic import when it is current."""
    import migrations
    from archive.index.database import database_url, make_engine

    url = database_url(settings.database_url, settings.data_dir)
    engine = make_engine(url, pool_size=1)
    migrations.ensure_current(url, engine)
    return engine


def open_libpq(settings: Settings) -> psycopg.Connection[Any]:
    """`open_index` without SQLAlchemy: one libpq connection, for a command whose start-up
    matters (`search`); SQLAlchemy and Alembic are imported only when the schema is behind."""
    import migrations
    from archive.index.database import database_url
    from archive.index.direct import connect

    url = database_url(settings.database_url, settings.data_dir)
    conn = connect(url)
    if not migrations.is_current_libpq(conn):
        migrations.upgrade(url)
    return conn


def plain_help(command: Any) -> Any:
    """Help that reads like a manual page: no `<bool>` after a flag, `N`, `NUMBER`, `TEXT`,
    `PATH` or `NAME...` instead of `<int>`, `<str>` or `<list[str]>`, and `QUERY` rather than
    `{QUERY}` in the usage line (typer's defaults), and paragraphs reflowed to the terminal
    (typer keeps a docstring's line breaks). Walks the command tree once, before it parses
    anything; an explicit metavar stays."""
    import inspect

    from typer._click import Context
    from typer.core import TyperArgument, TyperOption

    class PlainArgument(TyperArgument):
        def _usage_display_name(self) -> str:
            name = self.display_name_raw
            return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

        def display_type_rich(self, ctx: Any) -> str | None:
            return None

    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    params = list(getattr(command, "params", []))
    help_option = command.get_help_option(Context(command))
    for param in [*params, *([help_option] if help_option is not None else [])]:
        if isinstance(param, TyperArgument):
            param.__class__ = PlainArgument
            continue
        if param.metavar is not None or not isinstance(param, TyperOption):
            continue
        if param.is_flag:
            param.metavar = ""
            continue
        desc = param.type_descriptor
        inner = desc.annotation
        if desc.is_list:
            inner = getattr(inner, "__args__", (str,))[0]
        name = {int: "N", float: "NUMBER"}.get(inner, "PATH" if desc.is_path else "TEXT")
        param.metavar = name  # a list option is repeated (-m a -m b), not given a list
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    return command


_debug = False


def set_debug() -> None:
    """`mailarchive --debug`: tracebacks for every error and every log line of a run."""
    global _debug
    _debug = True
    logging.getLogger().setLevel(logging.INFO)


def debugging() -> bool:
    """Whether `--debug` was given."""
    return _debug


class _OneLineForArchiveErrors(logging.Formatter):
    """Formats as `inner` does, leaving out the traceback of an error of the tree."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        from archive.errors import ArchiveError

        if not (record.exc_info and isinstance(record.exc_info[1], ArchiveError)):
            return self.inner.format(record)
        # The record goes on to other handlers (the run's log in the Prefect UI keeps the
        # traceback), so it is restored after formatting.
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text = saved


def no_tracebacks_on_terminal() -> None:
    """On the terminal, Prefect logs a failed task or flow run with the traceback of its
    exception. For an error of the tree, which says what went wrong in words (a mailbox, a
    database that does not answer), the traceback adds 40 lines and nothing else; the same
    policy as `mailarchive`'s top level. Other exceptions, bugs, keep theirs."""
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            formatter = handler.formatter or logging.Formatter()
            if _is_terminal(handler) and not isinstance(formatter, _OneLineForArchiveErrors):
                handler.setFormatter(_OneLineForArchiveErrors(formatter))


class _ReportedAtTheEnd(logging.Filter):
    """Drops the log lines of a failed mailbox on the terminal: the archiver's, the task
    run's and the flow run's say the same error four times, and the run's view prints it
    once, with a hint. The run's log in the Prefect UI keeps every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "mailbox %s failed: %s":
            return False
        message = record.getMessage()
        return "MailboxFailed" not in message and "MailboxesFailed" not in message


def quiet_terminal_logs() -> None:
    """While `run` or `demo` shows its progress and then its results, the terminal gets
    warnings and errors only, and a failed mailbox once, in the results (not on four log
    lines). PREFECT_LOGGING_LEVEL, when set, is left to decide; the Prefect UI's log (its
    API handler) is never filtered."""
    import os

    if os.environ.get("PREFECT_LOGGING_LEVEL"):
        return
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if _is_terminal(handler) and not any(
                isinstance(f, _ReportedAtTheEnd) for f in handler.filters
            ):
                handler.setLevel(max(handler.level, logging.WARNING))
                handler.addFilter(_ReportedAtTheEnd())


def _is_terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (
        sys.stderr,
        sys.stdout,
        sys.__stderr__,
        sys.__stdout__,
    )
