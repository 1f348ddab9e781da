"""`mailarchive repair`: store damaged or missing originals again from the servers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from archive.app.console import command_settings, err, fail, out
from archive.errors import ArchiveError

repair_app = typer.Typer()


@repair_app.command()
def repair(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="Mailbox file of the servers to fetch from.", dir_okay=False
        ),
    ],
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", "-m", help="Only this mailbox's messages.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Find damaged or missing originals (as `mailarchive verify` does) and fetch each again
    from a server that still holds it: same unique-id, same size, and its bytes must hash to
    the archived SHA-256 before it is stored (and read back). Deletes nothing on any server.

    Says what it could not repair, and why; exits 1 if anything is left unrepaired.
    """
    from archive.config import load_mailbox_file
    from archive.pipeline.build import make_archiver, open_database
    from archive.pipeline.repair import repair as run_repair

    settings = command_settings()
    try:
        boxes = load_mailbox_file(config).select([mailbox] if mailbox else None)
    except ArchiveError as exc:
        fail(str(exc))
    _, engine = open_database(settings, pool_size=2)
    try:
        report = run_repair(make_archiver(settings, engine), engine, boxes, mailbox=mailbox)
    except ArchiveError as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        out.print(
            f"{report.damaged} damaged or missing objects; {len(report.repaired)} repaired, "
            f"{len(report.unrepaired)} not repaired",
            highlight=False,
        )
        for sha, name in sorted(report.repaired.items()):
            out.print(f"repaired: {sha} from mailbox {escape(name)}", highlight=False)
        for sha, why in sorted(report.unrepaired.items()):
            err.print(
                f"[red]not repaired:[/] {sha}: {escape(why)}", highlight=False, soft_wrap=True
            )
        for name, problem in sorted(report.mailboxes.items()):
            err.print(f"[yellow]mailbox {escape(name)}:[/] {escape(problem)}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
