"""`mailarchive mailbox forget NAME`: remove a mailbox's ledger and its own messages' rows."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from archive.app.console import JsonOption, command_settings, fail, open_index, out, print_json

mailbox_commands = typer.Typer()
mailbox_app = typer.Typer(help="Mailboxes the archive knows.", no_args_is_help=True)
mailbox_commands.add_typer(mailbox_app, name="mailbox")


@mailbox_app.command()
def forget(
    name: Annotated[str, typer.Argument(help="The mailbox, as `status` names it.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove a mailbox's ledger and the rows of the messages only it has.

    Messages also delivered to another mailbox stay, with every row. Stored objects stay
    too: `mailarchive gc` removes the ones nothing references any more. Refuses while a run
    of the mailbox holds its lock, and while a legal hold keeps any of its messages. The
    next run of a mailbox of that name archives everything on the server again. With
    --json (which needs --yes: there is no prompt), prints what was removed.
    """
    from archive.errors import ArchiveError
    from archive.index.forget import forget_mailbox, plan_forget

    if as_json and not yes:
        fail("--json needs --yes: nothing asks for confirmation in JSON mode")
    engine = open_index(command_settings())
    try:
        with engine.connect() as conn:
            plan = plan_forget(conn, name)
            conn.rollback()
            if plan is None:
                fail(f"the archive has no mailbox named {name!r} (see `mailarchive status`)", 1)
            if not as_json:
                out.print(
                    f"mailbox {escape(name)}: forgetting it removes {plan.deliveries:,} ledger "
                    f"rows and the {plan.messages_only_here:,} messages only it has; "
                    f"{plan.messages_shared:,} also in other mailboxes stay",
                    highlight=False,
                    soft_wrap=True,
                )
            if not yes and not typer.confirm(f"Forget mailbox {name}?", default=False):
                fail("nothing was forgotten", 1)
            try:
                done = forget_mailbox(conn, name)
            except ArchiveError as exc:
                fail(str(exc), 1)
    finally:
        engine.dispose()
    if as_json:
        kept = plan.messages_shared
        print_json(
            {
                "mailbox": name,
                "deliveries": done.deliveries,
                "messages": done.messages,
                "messages_kept": kept,
            }
        )
        return
    out.print(
        f"forgot mailbox {escape(name)}: {done.deliveries:,} ledger rows and "
        f"{done.messages:,} messages; `mailarchive gc` removes objects nothing references",
        highlight=False,
        soft_wrap=True,
    )
