"""How a run's per-mailbox results are shown: one column order for the CLI, demo and UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from archive.pipeline.result import RESULT_COLUMNS, run_totals

if TYPE_CHECKING:
    from archive.index.search import SearchPage

__all__ = ["RESULT_COLUMNS", "search_table", "summary_table"]


STATUS_STYLES = {"failed": "red", "partial": "yellow", "deferred": "yellow", "skipped": "dim"}


def summary_table(
    results: Sequence[dict[str, Any]], title: str = "Archive run", interrupted: str | None = None
) -> Table:
    """One row per mailbox (its status first), and the run's totals as the caption: how many
    mailboxes failed, and how many messages, counted apart."""
    if interrupted:
        title = f"{title} (interrupted by {interrupted})"
    table = Table(title=title, caption=run_totals(results).line())
    for column in RESULT_COLUMNS:
        text_column = column in ("name", "status", "note", "error")
        table.add_column(
            "mailbox" if column == "name" else column.replace("_", " "),
            justify="left" if text_column else "right",
            overflow="fold",
        )
    for r in results:
        table.add_row(
            *(escape(str(r[c])) if r.get(c) is not None else "" for c in RESULT_COLUMNS),
            style=STATUS_STYLES.get(str(r.get("status"))),
        )
    return table


def search_summary(page: SearchPage) -> str:
    """ "showing 1–20 of 2,184, newest first": what the page is, and that it is not all."""
    from archive.index.search import RANK_WINDOW

    shown = page.offset + len(page.hits)
    if page.offset == 0:
        span = f"showing {len(page.hits):,}"
    elif page.hits:
        span = f"showing {page.offset + 1:,}–{shown:,}"
    else:
        span = f"showing none after {page.offset:,}"
    more = f"; --offset {shown} for more" if page.hits and shown < page.total else ""
    order = "newest first"
    if page.order == "relevance":
        order = (
            f"best first among the {RANK_WINDOW:,} most recent matches"
            if page.ranked_a_window
            else "best first"
        )
    return f"{span} of {page.total:,}, {order}{more}"


def search_table(query: str, page: SearchPage) -> Table:
    """One page of `mailarchive search` hits, one row each, titled with the page's extent."""
    table = Table(title=f"{query[:60]!r}: {search_summary(page)}", show_lines=True, expand=True)
    table.add_column("sent", no_wrap=True)
    for column, ratio in (("mailbox", 1), ("from", 2), ("subject", 2), ("snippet", 4)):
        table.add_column(column, overflow="fold", ratio=ratio)
    for hit in page.hits:
        table.add_row(
            hit.sent_at.strftime("%Y-%m-%d %H:%M") if hit.sent_at else "",
            escape(hit.mailbox),
            escape(hit.from_address or ""),
            escape(hit.subject or ""),
            escape(hit.snippet or ""),
        )
    return table
