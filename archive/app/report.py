"""How a run's per-mailbox results are shown: one column order for the CLI, demo and UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from archive.pipeline.result import RESULT_COLUMNS

__all__ = ["RESULT_COLUMNS", "summary_table"]


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
