"""`retention`, `hold create|list|release` and `audit list|verify`: the compliance commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from archive.app.console import JsonOption, command_settings, fail, open_index, out
from archive.errors import ArchiveError, ConfigError

compliance_commands = typer.Typer()
hold_app = typer.Typer(help="Legal holds: held messages are never removed.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit trail.", no_args_is_help=True)
compliance_commands.add_typer(hold_app, name="hold")
compliance_commands.add_typer(audit_app, name="audit")


@compliance_commands.command()
def retention(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="Mailbox file with the retention policies.", dir_okay=False
        ),
    ],
    apply: Annotated[
        bool, typer.Option("--apply", help="Remove what expired (default: only list it).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove the rows of messages older than their mailbox's retention policy.

    Policies are `retention_days` or `retention_years` and `retention_from = "sent" |
    "archived"` per [[mailbox]], or at the top of the file for every mailbox. A dry run
    unless --apply. Held messages are never removed. The objects of removed messages become
    orphans, which `mailarchive gc --apply` removes. Exits 1 if a mailbox was skipped
    because an archive run holds it.
    """
    from archive.config import load_mailbox_file
    from archive.pipeline.retention import run

    try:
        archive_file = load_mailbox_file(config)
    except ConfigError as exc:
        fail(str(exc))
    engine = open_index(command_settings())
    try:
        report = run(engine, archive_file, apply=apply)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
    else:
        table = Table("mailbox", "policy", "expired", "held (kept)", title="retention")
        for box in report.mailboxes:
            state = " (busy: skipped)" if box.busy else ""
            table.add_row(
                escape(box.policy.mailbox),
                box.policy.describe(),
                f"{box.expired}{state}",
                str(box.held),
            )
        out.print(table)
        if apply:
            out.print(
                f"removed {report.deliveries_removed} deliveries and {report.messages} messages; "
                "`mailarchive gc --apply` removes their objects",
                highlight=False,
            )
        else:
            out.print(f"would remove {report.messages} messages; run with --apply", highlight=False)
        for box in report.mailboxes:
            if box.policy.server_keeps and box.expired:
                out.print(
                    f"note: mailbox {escape(box.policy.mailbox)} keeps mail on the server: "
                    "expired messages still there are archived again by the next run "
                    "(set delete_older_than_days)",
                    highlight=False,
                )
    if any(box.busy for box in report.mailboxes):
        raise typer.Exit(1)


@hold_app.command("create")
def hold_create(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", "-m", help="Hold every message of a mailbox.")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option("--query", "-q", help="Hold the messages this search matches now."),
    ] = None,
    message: Annotated[
        list[str] | None,
        typer.Option("--message", help="SHA-256 or unique prefix (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Place a legal hold on a mailbox, a search's matches, or single messages."""
    from archive.index import holds

    engine = open_index(command_settings())
    try:
        with engine.begin() as conn:
            info = holds.create(
                conn, name, reason, mailbox=mailbox, query=query, messages=message or ()
            )
    except ArchiveError as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(info.as_json()) + "\n")
    else:
        out.print(_placed(info.name, info.messages, query), highlight=False, soft_wrap=True)


def _placed(name: str, messages: int, query: str | None) -> str:
    """'hold k placed: 1 message', and why a query hold over nothing holds nothing."""
    line = f"hold {escape(name)} placed: {messages} message{'' if messages == 1 else 's'}"
    if query is not None and messages == 0:
        # A query hold is the list of its matches now (docs/compliance.md): it never grows.
        line += "; the query matches nothing now and mail archived later is not added"
    return line


@hold_app.command("release")
def hold_release(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    as_json: JsonOption = False,
) -> None:
    """Release a hold; it stays in `hold list` (and archive.holds) with the reason."""
    from archive.index import holds

    engine = open_index(command_settings())
    try:
        with engine.begin() as conn:
            info = holds.release(conn, name, reason)
    except ArchiveError as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(info.as_json()) + "\n")
        return
    out.print(f"hold {escape(name)} released", highlight=False)


@hold_app.command("list")
def hold_list(
    active: Annotated[bool, typer.Option("--active", help="Only active holds.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Every hold, active and released, oldest first."""
    from archive.index import holds

    engine = open_index(command_settings())
    try:
        with engine.connect() as conn:
            found = holds.list_holds(conn, active_only=active)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps([h.as_json() for h in found]) + "\n")
        return
    table = Table("name", "covers", "messages", "reason", "state")
    for h in found:
        covers = h.mailbox if h.kind == "mailbox" else h.query if h.kind == "query" else "messages"
        state = "active" if h.active else f"released: {h.release_reason}"
        table.add_row(
            escape(h.name), escape(covers or ""), str(h.messages), escape(h.reason), escape(state)
        )
    out.print(table)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest rows of the audit trail, newest first."""
    from archive.index import audit

    engine = open_index(command_settings())
    try:
        with engine.connect() as conn:
            rows = audit.entries(conn, limit, action)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps([r.as_json() for r in rows], ensure_ascii=False) + "\n")
        return
    table = Table("id", "at", "action", "role", "os user", "details")
    for r in rows:
        table.add_row(
            str(r.id),
            r.at.isoformat(timespec="seconds"),
            r.action,
            escape(r.db_role),
            escape(r.os_user or ""),
            escape(json.dumps(r.details, ensure_ascii=False)),
        )
    out.print(table)


@audit_app.command("verify")
def audit_verify(as_json: JsonOption = False) -> None:
    """Check the audit trail's hash chain: exits 1 if a row was edited or removed."""
    from archive.index import audit

    engine = open_index(command_settings())
    try:
        with engine.connect() as conn:
            report = audit.verify_chain(conn)
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps({"rows": report.rows, "broken": report.broken}) + "\n")
    elif report.ok:
        out.print(f"audit trail intact: {report.rows} rows chained", highlight=False)
    else:
        out.print(
            f"audit trail BROKEN at row(s) {', '.join(map(str, report.broken))} of {report.rows}",
            highlight=False,
        )
    if not report.ok:
        raise typer.Exit(1)
