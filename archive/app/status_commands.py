"""`mailarchive status`: each mailbox's last login and last archived message, its counts,
and the archive's size, from the index."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from archive.app.console import command_settings, open_index, out

status_commands = typer.Typer()


@status_commands.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Each mailbox's last login, last message archived, counts and size; the archive's size.

    From the index: messages archived and deleted from the server per mailbox, the bytes of
    their originals, then the stored objects (originals and attachments, each stored once).
    """
    from rich.table import Table
    from rich.text import Text

    from archive.app.report import human_bytes
    from archive.index.status import archive_size, mailbox_status

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
            "archive": {
                "originals": size.originals,
                "original_bytes": size.original_bytes,
                "parts": size.parts,
                "part_bytes": size.part_bytes,
            },
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    table = Table(title="Mailboxes")
    table.add_column("mailbox", overflow="fold")
    table.add_column("last login", max_width=10)
    table.add_column("last archived", max_width=10)
    for column in ("messages", "deleted", "size"):
        table.add_column(column, justify="right", no_wrap=True)
    for box in boxes:
        table.add_row(
            Text(box.name),
            box.last_login_at.strftime("%Y-%m-%d %H:%M") if box.last_login_at else "never",
            box.last_archived_at.strftime("%Y-%m-%d %H:%M") if box.last_archived_at else "—",
            f"{box.messages:,}",
            f"{box.deleted_on_server:,}",
            human_bytes(box.bytes),
        )
    out.print(table)
    out.print(
        f"archive: {size.originals:,} originals ({human_bytes(size.original_bytes)}), "
        f"{size.parts:,} attachments ({human_bytes(size.part_bytes)}), stored once each",
        highlight=False,
    )
