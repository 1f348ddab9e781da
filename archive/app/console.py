"""What every command shares: the two consoles, failing with a message, the settings, and
terminal logs without tracebacks for errors that say what went wrong in words."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from archive.config import Settings, load_settings
from archive.errors import ArchiveError, ConfigError

err = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: usage or configuration)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def command_settings() -> Settings:
    """The command's settings, built once here and passed down."""
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


class _OneLineForArchiveErrors(logging.Formatter):
    """Formats as `inner` does, leaving out the traceback of an error of the tree."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
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
            is_terminal = isinstance(handler, logging.StreamHandler) and getattr(
                handler, "stream", None
            ) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
            formatter = handler.formatter or logging.Formatter()
            if is_terminal and not isinstance(formatter, _OneLineForArchiveErrors):
                handler.setFormatter(_OneLineForArchiveErrors(formatter))
