"""A run's results as `mailarchive run` and `demo` print them: a compact table that fits 80
columns, then one line per failed mailbox with its error and a hint; on a pipe (cron), one
summary line and the failure lines only."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.box import SIMPLE_HEAD
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from archive.app.report import STATUS_STYLES, human_bytes

__all__ = ["failure_hint", "failure_lines", "print_results", "run_line", "run_table", "run_view"]

WIDE = 110
"""Columns from which the table adds the rarer counts (listed, repaired, attempts)."""

TLS_PORTS = frozenset({995})
PLAIN_PORTS = frozenset({110})

_PORT = re.compile(r"\([^()]*:(\d+)\)")


def _port(error: str) -> int | None:
    """The port of the `(host:port)` an endpoint names in every POP3 error."""
    match = _PORT.search(error)
    return int(match.group(1)) if match else None


def failure_hint(error: str) -> str | None:
    """What to change for the usual causes of a failed mailbox, read from its error text
    (the POP3 client's messages: archive/pop3/wire.py and client.py); None: no hint."""
    lowered = error.lower()
    port = _port(error)
    if "certificate not trusted" in lowered:
        if "self-signed" in lowered or "self signed" in lowered:
            return (
                "the server's certificate is self-signed: set `ca_file` for this mailbox to "
                "that certificate (PEM) to trust it"
            )
        # OpenSSL: "Hostname mismatch, …" or, for a host given as an address,
        # "IP address mismatch, certificate is not valid for '192.0.2.1'".
        if "mismatch" in lowered or "doesn't match" in lowered:
            return "the certificate names another host: set `host` to a name it lists"
        return "set `ca_file` for this mailbox to the CA certificate (PEM) the server uses"
    if "wrong_version_number" in lowered:
        return (
            "the server answered in plain text, not TLS: this looks like a plaintext port; "
            'use port 995 with tls = "implicit", or tls = "starttls" on this port'
        )
    if "timed out" in lowered and "waiting for greeting" in lowered:
        if port in TLS_PORTS:
            return (
                f"port {port} speaks TLS from the first byte and waits for the client: "
                'set tls = "implicit" (the default) for this mailbox'
            )
        return (
            "no greeting from the server: if this port speaks TLS from the start "
            '(usually 995), set tls = "implicit"; else check the host and port'
        )
    if "tls handshake failed" in lowered and "timed out" in lowered and port in PLAIN_PORTS:
        return f'port {port} is plaintext POP3: use port 995, or tls = "starttls" on {port}'
    if "login failed" in lowered or ("auth" in lowered and "refused" in lowered):
        return (
            "check the username and the password source (password_env, password_command or "
            "password_secret) for this mailbox"
        )
    if "cannot connect" in lowered:
        return "check `host` and `port`, and that the server is up and reachable from here"
    return None


def failure_lines(results: Sequence[dict[str, Any]]) -> list[Text]:
    """One line per failed mailbox (`✗ name: error`) with its hint beneath, and one per note
    of a mailbox that did not finish (deferred, partial, skipped)."""
    lines: list[Text] = []
    for r in results:
        name = str(r.get("name"))
        if r.get("status") == "failed" or r.get("error"):
            line = Text()
            line.append(f"✗ {name}: ", style="bold red")
            line.append(str(r.get("error") or "failed"))
            lines.append(line)
            hint = failure_hint(str(r.get("error") or ""))
            if hint:
                lines.append(Text(f"  hint: {hint}", style="yellow"))
        elif r.get("note"):
            lines.append(Text(f"! {name} ({r.get('status')}): {r['note']}", style="yellow"))
    return lines


def _columns(width: int, results: Sequence[dict[str, Any]] = ()) -> list[tuple[str, str]]:
    """The table's columns: `left` (copies not reached) when wide, or when a run left some."""
    columns = [
        ("name", "mailbox"), ("status", "status"), ("new", "new"), ("archived", "archived"),
        ("duplicates", "dup"), ("deleted", "deleted"), ("failed_messages", "failed"),
        ("bytes", "size"), ("seconds", "time"),
    ]  # fmt: skip
    if width >= WIDE or any(r.get("not_reached") for r in results):
        columns.insert(7, ("not_reached", "left"))
    if width >= WIDE:
        columns[2:2] = [("listed", "listed")]
        columns[-1:-1] = [("repaired", "repaired"), ("unrepaired", "unrepaired")]
        columns.append(("attempts", "attempts"))
    return columns


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "bytes":
        return human_bytes(int(value))
    if column == "seconds":
        return f"{float(value):.1f}s"
    return str(value)


def _needed(results: Sequence[dict[str, Any]], columns: list[tuple[str, str]]) -> int:
    """Columns the table takes with no cell folded (SIMPLE_HEAD: two spaces between cells)."""
    widths = [
        max([len(header)] + [len(_cell(column, r.get(column))) for r in results])
        for column, header in columns
    ]
    # SIMPLE_HEAD draws its column separator as a space, between two of padding.
    return sum(widths) + 3 * (len(widths) - 1) + 2


def _fitting(results: Sequence[dict[str, Any]], width: int) -> list[tuple[str, str]] | None:
    """The widest set of columns whose table fits `width` with no cell folded, or None."""
    for columns in (_columns(width, results), _columns(0, results)):
        if _needed(results, columns) <= width:
            return columns
    return None


def run_table(
    results: Sequence[dict[str, Any]], *, width: int, title: str = "Archive run"
) -> Table:
    """The counts per mailbox, no free text (errors and notes are lines below it)."""
    from archive.pipeline.result import run_totals

    columns = _fitting(results, width) or _columns(0, results)
    table = Table(
        title=title,
        caption=run_totals(results).line(),
        caption_justify="left",
        box=SIMPLE_HEAD,
        pad_edge=False,
    )
    for column, header in columns:
        text = column in ("name", "status")
        table.add_column(header, justify="left" if text else "right", no_wrap=True)
    for r in results:
        table.add_row(
            *(_cell(column, r.get(column)) for column, _ in columns),
            style=STATUS_STYLES.get(str(r.get("status"))),
        )
    return table


def run_list(results: Sequence[dict[str, Any]], *, title: str = "Archive run") -> Group:
    """Where the table would fold (long mailbox names, a narrow terminal): a line per
    mailbox, its name and status, then its counts indented beneath."""
    from archive.pipeline.result import run_totals

    lines: list[Text] = [Text(title, style="bold")]
    shown = _columns(0, results)[2:-2]
    for r in results:
        head = Text(str(r.get("name")), style="bold")
        head.append(f"  {r.get('status')}", style=STATUS_STYLES.get(str(r.get("status")), ""))
        counts = ", ".join(f"{_cell(column, r.get(column))} {header}" for column, header in shown)
        size = _cell("bytes", r.get("bytes"))
        seconds = _cell("seconds", r.get("seconds"))
        lines.extend([head, Text(f"  {counts}; {size} in {seconds}")])
    lines.append(Text(run_totals(results).line(), style="dim"))
    return Group(*lines)


def run_view(
    results: Sequence[dict[str, Any]],
    *,
    width: int,
    title: str = "Archive run",
    interrupted: str | None = None,
) -> RenderableType:
    """The table, then the failure lines: what a person reads on a terminal."""
    if interrupted:
        title = f"{title} (interrupted by {interrupted})"
    lines = failure_lines(results)
    if _fitting(results, width) is None:
        return Group(run_list(results, title=title), *lines)
    return Group(run_table(results, width=width, title=title), *lines)


def run_line(results: Sequence[dict[str, Any]], *, interrupted: str | None = None) -> str:
    """The one line a run without a terminal (cron) prints, before its failure lines."""
    from archive.pipeline.result import run_totals

    line = f"mailarchive run: {run_totals(results).line()}"
    return f"{line} (interrupted by {interrupted})" if interrupted else line


def print_results(
    console: Console,
    results: Sequence[dict[str, Any]],
    *,
    title: str = "Archive run",
    interrupted: str | None = None,
) -> None:
    """The table and failure lines on a terminal; on a pipe (cron), one summary line and the
    failure lines, unwrapped so a log keeps each error whole."""
    if console.is_terminal:
        console.print(run_view(results, width=console.width, title=title, interrupted=interrupted))
        return
    console.print(run_line(results, interrupted=interrupted), highlight=False, soft_wrap=True)
    for line in failure_lines(results):
        console.print(line, highlight=False, soft_wrap=True)
