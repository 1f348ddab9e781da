"""`mailarchive status`: each mailbox's last run and last success, its counts, the next
scheduled run (from the mailbox file's `schedule`), and the archive's size, from the index."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from archive.app.console import command_settings, fail, open_index, out

if TYPE_CHECKING:
    from archive.index.status import MailboxStatus

status_commands = typer.Typer()

NO_SCHEDULE_FILE = "not known: give --config FILE (its `schedule` is what `serve` runs)"


@status_commands.command()
def status(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The mailbox file `serve` runs: its schedule gives the next run.",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Each mailbox's last run and last success, counts and size; the next scheduled run;
    the archive's size.

    From the index: the last run of each mailbox (ok, failed, skipped, deferred, partial;
    a retry's attempts are runs of their own) and the last one that ended ok, messages
    archived and deleted from the server, the bytes of their originals; then the stored
    objects (originals and attachments, each stored once). The next run is computed from
    the --config file's `schedule` and `timezone`; whether `serve` runs it, and whether it
    is paused, Prefect knows (`mailarchive schedule show NAME`).
    """
    from archive.index.status import archive_size, mailbox_status

    schedule, next_at = _next_run(config)
    engine = open_index(command_settings())
    try:
        with engine.connect() as conn:
            boxes = mailbox_status(conn)
            size = archive_size(conn)
    finally:
        engine.dispose()
    if as_json:
        payload = {
            "mailboxes": [box.as_json() for box in boxes],
            "schedule": {
                "cron": schedule,
                "next_run": next_at.isoformat() if next_at else None,
                "source": str(config) if config else None,
            },
            "archive": {
                "originals": size.originals,
                "original_bytes": size.original_bytes,
                "parts": size.parts,
                "part_bytes": size.part_bytes,
            },
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _print(boxes, schedule, next_at, config)
    from archive.app.report import human_bytes

    out.print(
        f"archive: {size.originals:,} originals ({human_bytes(size.original_bytes)}), "
        f"{size.parts:,} attachments ({human_bytes(size.part_bytes)}), stored once each",
        highlight=False,
    )


def _next_run(config: Path | None) -> tuple[str | None, datetime | None]:
    """The file's schedule and its next run after now; (None, None) without a file or a
    schedule."""
    if config is None:
        return None, None
    from archive.config import load_mailbox_file
    from archive.config.cron import next_run
    from archive.errors import ConfigError

    try:
        archive_file = load_mailbox_file(config)
    except ConfigError as exc:
        fail(str(exc))
    if archive_file.schedule is None:
        return None, None
    from zoneinfo import ZoneInfo

    moment = next_run(archive_file.schedule, archive_file.timezone, datetime.now(UTC))
    # In the zone the schedule's wall-clock times are written in (default UTC).
    return archive_file.schedule, moment.astimezone(ZoneInfo(archive_file.timezone or "UTC"))


def _schedule_time(moment: datetime | None) -> str:
    """A next run in its schedule's zone, and in this machine's when that differs."""
    if moment is None:
        return "—"
    shown = moment.strftime("%Y-%m-%d %H:%M %Z")
    local = moment.astimezone()
    if local.utcoffset() != moment.utcoffset():
        shown += f" ({local.strftime('%Y-%m-%d %H:%M %Z')} here)"
    return shown


def _when(moment: datetime | None, empty: str = "never") -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else empty


def _print(
    boxes: list[MailboxStatus], schedule: str | None, next_at: datetime | None, config: Any
) -> None:
    """A table that fits 80 columns (times wrap to two lines), then a line per mailbox
    whose last run failed, and where the next run comes from."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from archive.app.report import STATUS_STYLES, human_bytes

    table = Table(title="Mailboxes", title_justify="left")
    table.add_column("mailbox", overflow="fold", ratio=1)
    table.add_column("last run", max_width=10)
    table.add_column("status", no_wrap=True)
    table.add_column("last ok", max_width=10)
    for column in ("messages", "deleted", "size"):
        table.add_column(column, justify="right", no_wrap=True)
    for box in boxes:
        state = box.last_run_status or "—"
        table.add_row(
            Text(box.name),
            _when(box.last_run_at),
            Text(state, style=STATUS_STYLES.get(state, "")),
            _when(box.last_success_at),
            f"{box.messages:,}",
            f"{box.deleted_on_server:,}",
            human_bytes(box.bytes),
        )
    out.print(table)
    for box in boxes:
        if box.last_run_status == "failed" and box.last_run_error:
            out.print(
                f"[red]{escape(box.name)} failed:[/] {escape(box.last_run_error)}",
                highlight=False,
            )
    if config is None:
        out.print(f"next run: {NO_SCHEDULE_FILE}", highlight=False)
    elif schedule is None:
        out.print(f"next run: none, {escape(str(config))} has no `schedule`", highlight=False)
    else:
        out.print(
            f"next run: {_schedule_time(next_at)} "
            f"({escape(schedule)}, from {escape(str(config))}; "
            "if `serve` runs it and `schedule show` says it is on)",
            highlight=False,
        )
