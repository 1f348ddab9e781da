"""The demo says it placed its example legal hold, and how to list and release it."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from archive.app.demo import EXAMPLE_HOLD, EXAMPLE_HOLD_QUERY, print_example_hold
from archive.index.holds import HoldInfo

HOLD = HoldInfo(
    name=EXAMPLE_HOLD,
    kind="query",
    reason="an example legal hold placed by the demo",
    mailbox=None,
    query=EXAMPLE_HOLD_QUERY,
    created_at=datetime(2026, 3, 1, tzinfo=UTC),
    created_by="demo",
    active=True,
    released_at=None,
    released_by=None,
    release_reason=None,
    messages=7,
)
ENV = "MAILARCHIVE_DATA_DIR=/d/demo"
LIST = f"  {ENV} uv run mailarchive hold list"
RELEASE = f"  {ENV} uv run mailarchive hold release demo-budget --reason 'demo'"


def _said(hold: HoldInfo, placed_now: bool) -> list[str]:
    out = io.StringIO()
    print_example_hold(Console(file=out, width=60), hold, placed_now, ENV)
    return [line for line in out.getvalue().splitlines() if line]


@pytest.mark.parametrize(
    ("placed_now", "first"),
    [
        (True, "The demo placed an example legal hold demo-budget on the"),
        (False, "The example legal hold demo-budget (placed by an earlier"),
    ],
)
def test_an_active_hold_is_announced_with_the_commands_that_list_and_release_it(
    placed_now: bool, first: str
):
    said = _said(HOLD, placed_now)
    text = " ".join(line.strip() for line in said)
    assert said[0].startswith(first)
    assert "7 messages" in text
    assert LIST in said and RELEASE in said  # commands unwrapped, on lines of their own


def test_a_released_hold_is_listed_but_not_offered_for_release():
    said = _said(dataclasses.replace(HOLD, active=False), placed_now=False)
    assert "was released" in " ".join(said)
    assert LIST in said and RELEASE not in said
