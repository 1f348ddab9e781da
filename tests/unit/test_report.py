"""The run table the CLI and the demo print: a status per mailbox, failures counted apart."""

from __future__ import annotations

import io

from rich.console import Console

from archive.app.run_view import run_view
from archive.pipeline.result import MailboxResult, run_totals


def _results() -> list[dict[str, object]]:
    return [
        MailboxResult(name="user1", archived=3, new=3, bytes=3000).to_dict(),
        MailboxResult(
            name="user3-badpw", status="failed", error="login failed: -ERR [AUTH]"
        ).to_dict(),
    ]


def test_totals_count_failed_mailboxes_and_failed_messages_apart():
    totals = run_totals(_results())
    assert (totals.mailboxes, totals.failed_mailboxes, totals.failed_messages) == (2, 1, 0)
    assert totals.line() == (
        "2 mailboxes: 1 ok, 1 failed; 3 archived, 0 duplicates, 0 deleted, "
        "0 messages failed, 3,000 bytes"
    )


def test_the_table_shows_each_status_and_the_totals():
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(run_view(_results(), width=200, interrupted="SIGTERM"))
    shown = buffer.getvalue()
    assert "Archive run (interrupted by SIGTERM)" in shown
    assert "2 mailboxes: 1 ok, 1 failed" in shown
    row = next(line for line in shown.splitlines() if line.split()[:1] == ["user3-badpw"])
    assert row.split()[1] == "failed"
    assert "✗ user3-badpw: login failed: -ERR [AUTH]" in shown
