"""How a page of search hits is shown (a run's results: run_view.py): sizes in KiB/MiB/GiB,
highlighted snippets on a terminal, a status's colour."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from archive.index.search import SearchPage

__all__ = [
    "SHORT_ID",
    "human_bytes",
    "search_list",
    "search_table",
    "search_view",
    "snippet_text",
]

WIDE = 110
"""Columns from which a page of hits is a table; narrower, one block per hit."""

SHORT_ID = 12
"""Hex digits of the SHA-256 shown as a hit's id; `mailarchive cat` takes any unique prefix."""

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(size: int) -> str:
    """'512 B', '1.5 KiB', '12 MiB': three significant digits at most, binary units."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


STATUS_STYLES = {"failed": "red", "partial": "yellow", "deferred": "yellow", "skipped": "dim"}


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


def snippet_text(snippet: str, *, highlight: bool) -> Text:
    """archive.search marks matches `**like this**` (ts_headline StartSel/StopSel): on a
    terminal the marks become bold yellow, elsewhere they are dropped, never printed."""
    text = Text()
    for i, piece in enumerate(snippet.split("**")):
        text.append(piece, style="bold yellow" if highlight and i % 2 else "")
    return text


def search_table(query: str, page: SearchPage, *, highlight: bool = False) -> Table:
    """One page of `mailarchive search` hits, one row each, titled with the page's extent."""
    table = Table(
        title=Text(f"{query[:60]!r}: {search_summary(page)}"), show_lines=True, expand=True
    )
    table.add_column("id", no_wrap=True, style="cyan" if highlight else None)
    table.add_column("sent", max_width=10)
    for column, ratio in (("mailbox", 1), ("from", 2), ("subject", 2), ("snippet", 4)):
        table.add_column(column, overflow="fold", ratio=ratio)
    for hit in page.hits:
        table.add_row(
            hit.sha256[:SHORT_ID],
            hit.sent_at.strftime("%Y-%m-%d %H:%M") if hit.sent_at else "",
            Text(hit.mailbox),
            Text(hit.from_address or ""),
            Text(hit.subject or ""),
            snippet_text(hit.snippet or "", highlight=highlight),
        )
    return table


def search_list(query: str, page: SearchPage, *, highlight: bool = False) -> Group:
    """One page of hits for a narrow terminal (80 columns): a block per hit, the id, date
    and mailbox on its first line, then sender, subject and snippet."""
    blocks: list[RenderableType] = [Text(f"{query[:60]!r}: {search_summary(page)}", style="bold")]
    for hit in page.hits:
        head = Text()
        head.append(hit.sha256[:SHORT_ID], style="cyan" if highlight else "")
        head.append(f"  {hit.sent_at.strftime('%Y-%m-%d %H:%M') if hit.sent_at else '(no date)'}")
        head.append(f"  {hit.mailbox}")
        body = Text()
        body.append(f"from:    {hit.from_address or ''}\nsubject: {hit.subject or ''}")
        if hit.snippet:
            body.append("\n")
            body.append_text(snippet_text(hit.snippet, highlight=highlight))
        blocks.extend([Text(""), head, Padding(body, (0, 0, 0, 2), expand=False)])
    return Group(*blocks)


def search_view(
    query: str, page: SearchPage, *, width: int, highlight: bool = False
) -> RenderableType:
    """A table on a wide terminal, a block per hit below `WIDE` columns; one line, "no
    messages match 'word'", when nothing matches."""
    if page.total == 0:
        return Text(f"no messages match {query[:60]!r}")
    if width >= WIDE:
        return search_table(query, page, highlight=highlight)
    return search_list(query, page, highlight=highlight)
