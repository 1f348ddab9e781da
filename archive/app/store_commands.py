"""Commands that read the object store: `cat`, `verify` and `gc`. Every read is verified."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from archive.app.console import command_settings, err, fail, out
from archive.errors import IntegrityError, ObjectNotFound

if TYPE_CHECKING:
    from archive.config import Settings

store_app = typer.Typer()


@store_app.command()
def cat(
    sha256: Annotated[
        str,
        typer.Argument(
            metavar="SHA256",
            help="SHA-256 (hex) of the original message, or a unique prefix of it (the id "
            "that `mailarchive search` shows).",
            show_default=False,
        ),
    ],
) -> None:
    """Write the original message with this hash to stdout, byte for byte.

    A prefix is looked up in the index and must name one message. The stored copy is hashed
    before anything is written: a damaged copy prints nothing and exits 1, naming the object
    (`mailarchive verify` lists every damaged copy; `mailarchive repair --config FILE` fetches
    them again from servers that still hold the messages).
    """
    from archive.store import open_store, raw_key, spool_verified

    settings = command_settings()
    digest = sha256.lower()
    if not digest or any(c not in "0123456789abcdef" for c in digest) or len(digest) > 64:
        fail(f"{sha256!r} is not a SHA-256 hex digest or a prefix of one")
    if len(digest) < 64:
        digest = _unique_original(settings, digest)
    key = raw_key(digest)
    store = open_store(settings.resolved_store_url)
    try:
        with spool_verified(store, key, digest) as spool:
            shutil.copyfileobj(spool, sys.stdout.buffer, 1 << 20)
    except ObjectNotFound:
        fail(f"no message with SHA-256 {digest} in {store.url}", 1)
    except IntegrityError as exc:
        fail(str(exc), 1)
    sys.stdout.buffer.flush()


MIN_PREFIX = 4


def _unique_original(settings: Settings, prefix: str) -> str:
    """The one original whose SHA-256 starts with `prefix`; exit 1 if none or several."""
    from archive.app.console import open_index
    from archive.index.objects import originals_with_prefix

    if len(prefix) < MIN_PREFIX:
        fail(f"SHA-256 prefix {prefix!r} is too short: give at least {MIN_PREFIX} hex digits")
    engine = open_index(settings)
    try:
        with engine.connect() as conn:
            found = originals_with_prefix(conn, prefix, limit=3)
    finally:
        engine.dispose()
    if not found:
        fail(f"no archived message has a SHA-256 starting with {prefix}", 1)
    if len(found) > 1:
        more = ", …" if len(found) > 2 else ""
        fail(
            f"SHA-256 prefix {prefix} is ambiguous: {', '.join(found[:2])}{more}; give more digits",
            1,
        )
    return found[0]


@store_app.command()
def verify(
    sample: Annotated[
        int | None,
        typer.Option("--sample", min=1, help="Check this many objects chosen at random."),
    ] = None,
    check_all: Annotated[
        bool, typer.Option("--all", help="Check every object (the default).")
    ] = False,
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", "-m", help="Only this mailbox's messages.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-hash stored originals and attachments against the index.

    Reports objects that are missing, whose bytes hash to something else, or that cannot be
    read, and orphans (stored objects no row references; `mailarchive gc` removes them).
    Exits 1 on any missing or damaged object, 0 otherwise.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from archive.pipeline.build import open_database
    from archive.pipeline.verify import verify as run_verify
    from archive.store import open_store

    if sample is not None and check_all:
        fail("--sample and --all exclude each other")
    settings = command_settings()
    store = open_store(settings.resolved_store_url)
    _, engine = open_database(settings, pool_size=1)
    try:
        if err.is_terminal and not as_json:
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            ) as bar:
                task = bar.add_task("verifying", total=None)
                report = run_verify(
                    engine,
                    store,
                    mailbox=mailbox,
                    sample=sample,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            report = run_verify(engine, store, mailbox=mailbox, sample=sample)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    else:
        summary = report.to_dict()
        scope = f"mailbox {mailbox}" if mailbox else store.url
        what = f"a sample of {report.checked}" if report.sampled else f"{report.checked}"
        out.print(
            f"verified {what} objects in {escape(scope)}: {report.intact} intact, "
            f"{summary['missing']} missing, {summary['mismatched']} damaged, "
            f"{summary['unreadable']} unreadable; "
            + (
                "orphans are looked for only in a whole-archive check"
                if mailbox
                else f"{len(report.orphans)} orphans"
                + (" (`mailarchive gc` removes them)" if report.orphans else "")
            ),
            highlight=False,
        )
        for finding in report.findings:
            f = finding.to_dict()
            err.print(
                f"[red]{f['state']}:[/] {f['kind']} {f['sha256']} ({escape(f['where'])})"
                + (f": {escape(f['detail'])}" if f["detail"] else ""),
                highlight=False,
                soft_wrap=True,
            )
        if not report.ok:
            err.print(
                "hint: `mailarchive repair --config FILE` fetches damaged or missing originals "
                "again from the servers that still hold them",
                highlight=False,
                soft_wrap=True,
            )
    if not report.ok:
        raise typer.Exit(1)


@store_app.command()
def gc(
    apply: Annotated[
        bool, typer.Option("--apply", help="Remove the orphans (default: only list them).")
    ] = False,
    grace_hours: Annotated[
        float,
        typer.Option("--grace-hours", min=0, help="Keep orphans younger than this."),
    ] = 24.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Remove stored objects that no row references (a run killed between storing an object
    and recording it, rows removed by hand). A dry run unless --apply.

    Never removes an object a running archive may be about to reference: only orphans older
    than the grace period, and only while no archive run or reindex is writing (otherwise it
    exits 1 and removes nothing).
    """
    from archive.errors import ArchiveError
    from archive.pipeline.build import open_database
    from archive.pipeline.verify import collect_garbage
    from archive.store import open_store

    settings = command_settings()
    store = open_store(settings.resolved_store_url)
    _, engine = open_database(settings, pool_size=1)
    try:
        report = collect_garbage(engine, store, grace=timedelta(hours=grace_hours), apply=apply)
    except ArchiveError as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        return
    verb = "removed" if apply else "would remove"
    count = len(report.removed) if apply else len(report.would_remove)
    out.print(
        f"{report.orphans} orphans in {escape(store.url)}; {verb} {count} "
        f"({report.bytes:,} bytes); {report.kept_young} kept as younger than {grace_hours:g} h"
        + (f"; {report.kept_held} kept under legal hold" if report.kept_held else "")
        + ("" if apply else "; run with --apply to remove them"),
        highlight=False,
    )
