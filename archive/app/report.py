"""How a run's per-mailbox results are shown: one column order for the CLI, demo and UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from archive.index.search import SearchHit

RESULT_COLUMNS = (
    "name", "listed", "new", "archived", "duplicates", "deleted", "failed", "bytes", "seconds",
    "note", "error",
)  # fmt: skip
"""The counts of `MailboxResult.to_dict()`, in the order tables show them."""


def summary_table(results: Sequence[dict[str, Any]], title: str = "Archive run") -> Table:
    table = Table(title=title)
    for column in RESULT_COLUMNS:
        text_column = column in ("name", "note", "error")
        table.add_column(
            "mailbox" if column == "name" else column,
            justify="left" if text_column else "right",
            overflow="fold",
        )
    for r in results:
        table.add_row(
            *(str(r[c] if r[c] is not None else "") for c in RESULT_COLUMNS),
            style="red" if r["error"] else None,
        )
    return table


def search_table(query: str, hits: Sequence[SearchHit]) -> Table:
    """The hits of `mailarchive search`, one row each."""
    table = Table(title=f"{len(hits)} results for {query[:60]!r}", show_lines=True, expand=True)
    table.add_column("sent", no_wrap=True)
    for column, ratio in (("mailbox", 1), ("from", 2), ("subject", 2), ("snippet", 4)):
        table.add_column(column, overflow="fold", ratio=ratio)
    for hit in hits:
        table.add_row(
            hit.sent_at.strftime("%Y-%m-%d %H:%M") if hit.sent_at else "",
            escape(hit.mailbox),
            escape(hit.from_address or ""),
            escape(hit.subject or ""),
            escape(hit.snippet or ""),
        )
    return table
