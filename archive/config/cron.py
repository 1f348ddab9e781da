"""Cron expressions of the mailbox file's `schedule`, checked before any run.

Prefect parses the schedule itself, but the core may not import Prefect; this accepts and
rejects what Prefect's validator does (tests/test_flow.py compares the two).
"""

from __future__ import annotations

_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_NAMES = (
    None,
    None,
    None,
    "jan feb mar apr may jun jul aug sep oct nov dec".split(),
    "sun mon tue wed thu fri sat".split(),
)
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def validate_cron(expression: str) -> None:
    """Reject what Prefect's cron schedules (croniter) would reject, with the reason.

    Five fields (minute hour day month weekday) of `*`, numbers, names, ranges `a-b`, steps
    `/n` and lists, or one macro. Prefect refuses croniter's random/hashed `R`/`H` forms, and
    so does this. tests/test_flow.py checks it agrees with Prefect's own validator.
    """
    text = expression.strip()
    if text.lower() in _CRON_MACROS:
        return
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expression!r}: expected 5 fields (minute hour day month weekday), "
            f"got {len(fields)}"
        )
    for field_text, (low, high), names, label in zip(
        fields, _CRON_RANGES, _CRON_NAMES, _CRON_FIELDS, strict=True
    ):
        for item in field_text.split(","):
            if not _valid_cron_item(item.lower(), low, high, names):
                raise ValueError(f"cron {expression!r}: bad {label} {item!r}")


def _valid_cron_item(item: str, low: int, high: int, names: list[str] | None) -> bool:
    base, _, step = item.partition("/")
    if step and not (step.isdigit() and 0 < int(step) <= high):
        return False
    if base == "*":
        return True

    def value(token: str) -> int | None:
        if token.isdigit():
            return int(token)
        if names is not None and token in names:
            return names.index(token) + (1 if low == 1 else 0)
        return None

    start_text, dash, end_text = base.partition("-")
    start = value(start_text)
    end = value(end_text) if dash else start
    if start is None or end is None:
        return False
    # croniter reads a reversed range (22-2) as wrapping around; so does Prefect.
    return low <= start <= high and low <= end <= high
