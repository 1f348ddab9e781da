"""Cron expressions of the mailbox file's `schedule`, checked before any run.

Prefect parses the schedule itself, but the core may not import Prefect; this accepts and
rejects what Prefect's validator does (tests/test_flow.py compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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


_MACRO_FIELDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Feb 29 on a given weekday comes back within 28 years; nothing a valid schedule names is
# further away.
_SEARCH_DAYS = 366 * 29


def _expand(field_text: str, low: int, high: int, names: list[str] | None) -> set[int]:
    """The values one (valid) field allows. A reversed range wraps around, as croniter's."""
    values: set[int] = set()
    for item in field_text.lower().split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1

        def value(token: str) -> int:
            if token.isdigit():
                return int(token)
            assert names is not None
            return names.index(token) + (1 if low == 1 else 0)

        if base == "*":
            start, end = low, high
        else:
            start_text, dash, end_text = base.partition("-")
            start = value(start_text)
            end = value(end_text) if dash else (high if step_text else start)
        span = list(range(start, end + 1)) if start <= end else [
            *range(start, high + 1), *range(low, end + 1)]  # fmt: skip
        values.update(span[::step])
    return values


def next_run(expression: str, timezone: str | None, after: datetime) -> datetime:
    """The first time after `after` that the schedule fires, as Prefect's cron schedule
    computes it: wall-clock times in `timezone` (default UTC); a time that a DST change
    skips fires as the same instant an hour on, a repeated one fires once, the first time.
    Day of month and day of week are OR-ed when both are restricted, as in cron.
    `expression` must be valid (`validate_cron`)."""
    validate_cron(expression)
    text = _MACRO_FIELDS.get(expression.strip().lower(), expression)
    fields = text.split()
    minutes, hours, days, months, weekdays = (
        _expand(f, low, high, names)
        for f, (low, high), names in zip(fields, _CRON_RANGES, _CRON_NAMES, strict=True)
    )
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    any_day, any_weekday = days == set(range(1, 32)), weekdays == set(range(7))
    zone = ZoneInfo(timezone or "UTC")
    after_utc = after.astimezone(UTC)
    start = after.astimezone(zone).date()
    first: datetime | None = None
    best: datetime | None = None
    for offset in range(_SEARCH_DAYS):
        day = start + timedelta(days=offset)
        by_day, by_weekday = day.day in days, (day.isoweekday() % 7) in weekdays
        either = not (any_day or any_weekday)
        if day.month not in months or not (
            (by_day or by_weekday) if either else (by_day and by_weekday)
        ):
            continue
        for hour in sorted(hours):
            for minute in sorted(minutes):
                wall = datetime(day.year, day.month, day.day, hour, minute)
                # Around a DST change wall order and time order differ: the earliest
                # instant among the next few hours of wall times is the next run.
                if first is not None and wall > first + timedelta(hours=3):
                    return best.astimezone(zone)  # type: ignore[union-attr]
                moment = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
                if moment <= after_utc:
                    continue
                first = first or wall
                best = moment if best is None else min(best, moment)
    if best is None:
        raise ValueError(f"cron {expression!r}: fires on no date within {_SEARCH_DAYS} days")
    return best.astimezone(zone)
