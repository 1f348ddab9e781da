"""`mailarchive export` and `mailarchive import`: the archive out to mbox, a ZIP of .eml files
or a Maildir (with a manifest, optionally a BagIt bag; local or S3), and mbox files or
Maildirs in. Every original read is verified by SHA-256; every one imported is stored
verified and indexed with its ledger row in one transaction."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from archive.app.console import (
    JsonOption,
    command_settings,
    err,
    fail,
    open_index,
    out,
    print_json,
)
from archive.errors import ArchiveError, QueryError

transfer_commands = typer.Typer()


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[..., None]]:
    """A rich progress bar on a terminal; nothing otherwise (the summary line says it all)."""
    if not err.is_terminal:
        yield lambda *_: None
        return
    from rich.progress import Progress

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")


@transfer_commands.command("export")
def export_command(
    query: Annotated[
        str, typer.Argument(help="Search query (as `mailarchive search`); '' exports everything.")
    ],
    out_path: Annotated[
        str, typer.Option("--out", metavar="PATH", help="Empty folder, or s3://bucket/prefix.")
    ],
    format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="mbox, eml-zip or maildir.")
    ] = "mbox",
    mailbox: Annotated[str | None, typer.Option(help="Only this mailbox.")] = None,
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="Sent on or after (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="DATE", help="Sent on or before (YYYY-MM-DD).")
    ] = None,
    skip_damaged: Annotated[
        bool, typer.Option(help="Leave damaged originals out (listed in the manifest).")
    ] = False,
    bagit: Annotated[bool, typer.Option(help="Make the export a BagIt bag (SHA-256).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Export the messages a search finds, originals byte for byte, with a manifest.

    Every match is exported, newest first. Each original is verified by SHA-256 as it is
    read; a damaged one stops the export (exit 1) unless --skip-damaged. The manifest
    (manifest.csv: sha256, size, mailbox, uidl, archived_at, message_id, date, from,
    subject) has its own SHA-256 in manifest.csv.sha256; with --bagit, check the bag with
    `bagit.py --validate PATH`.
    """
    from archive.pipeline.export import FORMATS, ExportRequest, export
    from archive.store import open_store

    if format not in FORMATS:
        fail(f"--format {format!r}: choose mbox, eml-zip or maildir")
    request = ExportRequest(
        query=query,
        out=out_path,
        format=format,
        mailbox=mailbox,
        since=_day(since, "--since"),
        until=_day(until, "--until"),
        skip_damaged=skip_damaged,
        bagit=bagit,
    )
    settings = command_settings()
    engine = open_index(settings)
    try:
        with _progress("exporting", None) as progress:
            result = export(engine, open_store(settings.resolved_store_url), request, progress)
    except QueryError as exc:
        fail(f"search query: {exc}")
    except ArchiveError as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        print_json(
            {
                "out": result.out,
                "format": result.format,
                "query": result.query,
                "matched": result.matched,
                "exported": result.exported,
                "bytes": result.bytes,
                "skipped_damaged": list(result.skipped),
                "manifest_sha256": result.manifest_sha256,
                "bag": result.bag,
                "seconds": round(result.seconds, 3),
            }
        )
    else:
        out.print(result.summary(), highlight=False, soft_wrap=True)
    for sha256 in result.skipped:
        err.print(f"skipped damaged original {sha256}", highlight=False)


@transfer_commands.command("import")
def import_command(
    kind: Annotated[str, typer.Argument(metavar="mbox|maildir", help="What PATH is.")],
    path: Annotated[Path, typer.Argument(metavar="PATH", help="An mbox file or a Maildir.")],
    mailbox: Annotated[
        str, typer.Option(metavar="NAME", help="The mailbox the messages are filed under.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Import an mbox file (mboxo, mboxrd, Content-Length) or a Maildir into the archive.

    Each message is stored verified, parsed and indexed at once (searchable), recorded in
    the mailbox as `import:<sha256>`: a unique-id no POP3 server lists, so no POP3 run ever
    deletes anything because of it. Re-running imports nothing twice; an interrupted import
    continues where it stopped.
    """
    from archive.pipeline.build import make_importer

    if kind not in ("mbox", "maildir"):
        fail(f"import: {kind!r} is not mbox or maildir")
    settings = command_settings()
    engine = open_index(settings)
    try:
        importer = make_importer(settings, engine)
        with _progress("importing", None) as progress:
            result = importer.run(kind, path, mailbox, progress)  # type: ignore[arg-type]
    except ArchiveError as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        print_json(
            {
                "mailbox": result.mailbox,
                "source": result.source,
                "found": result.found,
                "imported": result.imported,
                "duplicates": result.duplicates,
                "already": result.already,
                "bytes": result.bytes,
                "seconds": round(result.seconds, 3),
            }
        )
        return
    out.print(result.summary(), highlight=False, soft_wrap=True)
    sys.stdout.flush()
