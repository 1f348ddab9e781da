"""What `mailarchive run` and `demo` print: a table that fits 80 columns, one line per failed
mailbox with a hint, one summary line on a pipe, and bars per mailbox on a terminal."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console
from rich.progress import Progress

from archive.app.run_progress import MailboxProgress, progress_display
from archive.app.run_view import failure_hint, print_results
from archive.pipeline.result import MailboxResult

SELF_SIGNED = (
    "mailbox 'alice' (mail.example.org:995): TLS certificate not trusted: self-signed certificate"
)
WRONG_VERSION = "mailbox 'bob' (mail.example.org:110): TLS handshake failed: WRONG_VERSION_NUMBER"
GREETING_TIMEOUT = (
    "mailbox 'carol' (mail.example.org:995): timed out after 30s waiting for greeting"
)
BAD_PASSWORD = "mailbox 'dave' (mail.example.org:995): login failed (PASS): -ERR [AUTH] no"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SELF_SIGNED, "`ca_file`"),
        (
            "mailbox 'f' (mail.example.org:995): TLS certificate not trusted: Hostname "
            "mismatch, certificate is not valid for 'mail.example.org'.",
            "set `host` to a name it lists",
        ),
        (
            "mailbox 'g' (192.0.2.1:995): TLS certificate not trusted: IP address mismatch, "
            "certificate is not valid for '192.0.2.1'.",
            "set `host` to a name it lists",
        ),
        (WRONG_VERSION, "plaintext port"),
        (GREETING_TIMEOUT, 'tls = "implicit"'),
        (BAD_PASSWORD, "password source"),
        ("mailbox 'e' (h:995): cannot connect: Connection refused", "`host` and `port`"),
    ],
)
def test_each_usual_failure_gets_its_hint(error: str, expected: str):
    hint = failure_hint(error)
    assert hint is not None and expected in hint, hint


def test_an_unknown_failure_gets_no_hint():
    assert failure_hint("mailbox 'x': database unavailable (cannot start)") is None


def _results(first: str = "alice") -> list[dict[str, object]]:
    return [
        MailboxResult(
            name=first, new=120, archived=118, duplicates=2, bytes=5_400_000, seconds=3.2
        ).to_dict(),
        MailboxResult(name="bob", status="failed", error=WRONG_VERSION, seconds=0.1).to_dict(),
        MailboxResult(name="carol", status="deferred", note="LOGIN-DELAY 900 s").to_dict(),
    ]


def _printed(*, terminal: bool, width: int = 80, first: str = "alice") -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=terminal, color_system=None)
    print_results(console, _results(first))
    return buffer.getvalue()


def _rows(shown: str) -> dict[str, str]:
    return {line.split()[0]: line for line in shown.splitlines() if line.strip()}


def test_at_80_columns_a_table_with_no_cell_folded_and_a_line_per_failure():
    shown = _printed(terminal=True)
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    rows = _rows(shown)
    assert rows["alice"].split() == [
        "alice",
        "ok",
        "120",
        "118",
        "2",
        "0",
        "0",
        "5.1",
        "MiB",
        "3.2s",
    ]
    assert rows["bob"].split()[1] == "failed" and rows["carol"].split()[1] == "deferred"
    assert f"✗ bob: {WRONG_VERSION}" in " ".join(shown.split()), shown
    hint = next(line for line in shown.splitlines() if line.startswith("  hint: "))
    assert "plaintext" in hint, shown
    assert "! carol (deferred): LOGIN-DELAY 900 s" in shown, shown


def test_a_name_too_long_for_the_table_gets_a_block_per_mailbox():
    name = "accounts-payable-and-receivable@example.org"
    shown = _printed(terminal=True, first=name)
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), shown
    at = lines.index(f"{name}  ok")
    assert lines[at + 1] == "  120 new, 118 archived, 2 dup, 0 deleted, 0 failed; 5.1 MiB in 3.2s"


def test_on_a_pipe_one_summary_line_then_the_failures_unwrapped():
    shown = _printed(terminal=False, width=40)
    lines = shown.splitlines()
    assert lines[0] == (
        "mailarchive run: 3 mailboxes: 1 ok, 1 failed, 1 deferred; 118 archived, "
        "2 duplicates, 0 deleted, 0 messages failed, 5,400,000 bytes"
    )
    assert lines[1] == f"✗ bob: {WRONG_VERSION}"
    assert lines[2].startswith("  hint: ") and "plaintext port" in lines[2]
    assert lines[3] == "! carol (deferred): LOGIN-DELAY 900 s"
    assert len(lines) == 4, shown


def test_no_progress_bars_on_a_pipe():
    with progress_display(Console(file=io.StringIO())) as display:
        assert display is None


def test_the_bars_follow_each_mailbox_messages_and_bytes():
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    show = MailboxProgress(progress)
    show(
        "alice",
        MailboxResult(name="alice", new=10, archived=3, duplicates=1, not_reached=6, bytes=2048),
    )
    show("bob", MailboxResult(name="bob", new=5, archived=5, bytes=10, seconds=1.0))
    tasks = {task.description: task for task in progress.tasks}
    assert (tasks["alice"].completed, tasks["alice"].total) == (4, 10)
    assert tasks["alice"].fields == {"size": "2.0 KiB", "state": "running"}
    assert (tasks["bob"].completed, tasks["bob"].fields["state"]) == (5, "ok")
    show("carol", MailboxResult(name="carol", new=0, seconds=0.0))
    show("dave", MailboxResult(name="dave", new=0, seconds=1.0))
    tasks = {task.description: task for task in progress.tasks}
    # Listing not in yet: unknown (0/?); a run that ended with nothing new: 0/0.
    assert (tasks["carol"].total, tasks["dave"].total) == (None, 0)


def test_a_transient_failure_with_retries_left_shows_as_retrying_with_its_clock_running():
    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    show = MailboxProgress(progress, retries=2)
    failed = MailboxResult(name="alice", status="failed", seconds=1.0, transient=True)
    show("alice", failed)
    (task,) = progress.tasks
    assert task.fields["state"] == "attempt 1 failed, retrying"
    assert task.total is None and not task.finished  # the clock goes on while it waits
    show("alice", dataclasses.replace(failed, attempts=3))  # the last one: no retry left
    assert task.fields["state"] == "failed" and task.finished
    show("bob", MailboxResult(name="bob", status="failed", seconds=1.0))  # permanent
    assert progress.tasks[1].fields["state"] == "failed"
    unknown = MailboxProgress(progress)  # retries not told: as before
    unknown("carol", MailboxResult(name="carol", status="failed", seconds=1.0, transient=True))
    assert progress.tasks[2].fields["state"] == "failed"


def test_a_run_on_the_terminal_shows_warnings_and_each_failure_once(monkeypatch):
    import logging
    import sys

    from archive.app.console import quiet_terminal_logs

    monkeypatch.delenv("PREFECT_LOGGING_LEVEL", raising=False)
    shown, kept = io.StringIO(), io.StringIO()
    terminal = logging.StreamHandler(sys.__stderr__)
    terminal.setStream(shown)  # type: ignore[arg-type]
    api = logging.StreamHandler(kept)  # stands for Prefect's API handler: not a terminal
    logger = logging.getLogger("archive.test_quiet")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(terminal)
    logger.addHandler(api)
    try:
        terminal.setStream(sys.__stderr__)  # what quiet_terminal_logs recognises
        quiet_terminal_logs()
        terminal.setStream(shown)  # type: ignore[arg-type]
        logger.info("mailbox %s: %d archived", "sales", 3)
        logger.error("mailbox %s failed: %s", "legal", "login failed")
        logger.error("Finished in state Failed('MailboxFailed: legal')")
        logger.warning("mailbox %s: QUIT not confirmed", "sales")
    finally:
        logger.handlers.clear()
    assert shown.getvalue().splitlines() == ["mailbox sales: QUIT not confirmed"]
    assert len(kept.getvalue().splitlines()) == 4


def test_log_lines_go_above_the_bars_not_through_them():
    import logging
    import sys

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, color_system=None)
    # The process's stderr, as Prefect's handler and basicConfig's hold it from start-up.
    handler = logging.StreamHandler(sys.__stderr__)
    logger = logging.getLogger("archive.test_run_view")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with progress_display(console) as display:
            assert display is not None
            display("alice", MailboxResult(name="alice", new=2, archived=1))
            logger.warning("mailbox bob failed: timed out")
        assert handler.stream is sys.__stderr__  # given back
    finally:
        logger.removeHandler(handler)
    shown = buffer.getvalue()
    assert "mailbox bob failed: timed out" in shown, shown
    assert "alice" in shown


def test_an_interrupted_run_shows_what_it_left_apart_from_what_failed():
    # Ctrl-C after 326 of 3,000: the rest are not failures; the next run takes them.
    stopped = MailboxResult(
        name="big", status="partial", new=3000, archived=326, not_reached=2674,
        bytes=110_000, seconds=1.8, interrupted=True, note="interrupted: session dropped",
    ).to_dict()  # fmt: skip
    shown = {}
    for width in (80, 140):
        buffer = io.StringIO()
        console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
        print_results(console, [stopped])
        shown[width] = buffer.getvalue()
    assert "  3000 new, 326 archived, 0 dup, 0 deleted, 0 failed, 2674 left;" in shown[80]
    header = next(line for line in shown[140].splitlines() if line.split()[:1] == ["mailbox"])
    assert header.split()[:10] == [
        "mailbox", "status", "listed", "new", "archived", "dup", "deleted", "failed", "left",
        "size",
    ]  # fmt: skip
    assert _rows(shown[140])["big"].split()[3:9] == ["3000", "326", "0", "0", "0", "2674"]
    for text in shown.values():
        assert "0 messages failed, 2674 not reached" in " ".join(text.split())


def test_a_terminal_too_narrow_for_the_wide_table_gets_the_narrow_one_not_blocks():
    # 110-122 columns: the wide set (listed, repaired, attempts) needs ~123.
    shown = _printed(terminal=True, width=115)
    assert "  120 new, 118 archived" not in shown  # no block per mailbox
    assert _rows(shown)["alice"].split()[:3] == ["alice", "ok", "120"]
