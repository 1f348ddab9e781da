"""What every command shares: the two consoles, failing with a message, and the settings."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from archive.config import Settings, load_settings
from archive.errors import ConfigError

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
