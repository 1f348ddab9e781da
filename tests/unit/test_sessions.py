"""Session planning: per-session caps and whether another session follows."""

from __future__ import annotations

import pytest

from archive.pipeline.sessions import SessionOutcome, cap_session, wants_another_session
from archive.pop3.source import Listed


def sized(*sizes: int | None) -> list[Listed]:
    return [Listed(number, f"u{number}", size) for number, size in enumerate(sizes, start=1)]


def numbers(items: list[Listed]) -> list[int]:
    return [item.number for item in items]


def test_no_limits_takes_everything():
    assert numbers(cap_session(sized(5, 5, 5), None, None)) == [1, 2, 3]


def test_message_cap_takes_the_first_ones():
    assert numbers(cap_session(sized(5, 5, 5), 2, None)) == [1, 2]


def test_byte_cap_stops_before_the_message_that_would_pass_it():
    assert numbers(cap_session(sized(4, 4, 1), None, 9)) == [1, 2, 3]  # exactly 9 fits
    assert numbers(cap_session(sized(4, 4, 2), None, 9)) == [1, 2]
    assert numbers(cap_session(sized(4, 5, 1), None, 9)) == [1, 2]
    assert numbers(cap_session(sized(4, 6, 1), None, 9)) == [1]


def test_an_oversized_first_message_is_still_taken_so_the_run_progresses():
    assert numbers(cap_session(sized(100, 1), None, 10)) == [1]


def test_unknown_sizes_count_as_zero():
    assert numbers(cap_session(sized(None, None, 5), None, 5)) == [1, 2, 3]


def test_nothing_wanted_nothing_taken():
    assert cap_session([], 3, 10) == []


@pytest.mark.parametrize(
    ("outcome", "limited", "expected"),
    [
        # Nothing new: done, whatever the server is like.
        (SessionOutcome(listed=5, new=0), None, (False, False)),
        (SessionOutcome(listed=0, new=0, capped=True), True, (False, False)),
        # Stopped at our own cap: go on, no probe needed.
        (SessionOutcome(listed=9, new=3, capped=True), False, (True, False)),
        # All-new listing from a server not known yet: a probe follows.
        (SessionOutcome(listed=4, new=4), None, (True, True)),
        # Known to list only part of the mailbox (Gmail): go on without probing.
        (SessionOutcome(listed=4, new=4), True, (True, False)),
        # Known to list everything: one session is enough.
        (SessionOutcome(listed=4, new=4), False, (False, False)),
        # Some listed mail was old: the server showed everything it has.
        (SessionOutcome(listed=5, new=4), None, (False, False)),
    ],
)
def test_wants_another_session(outcome, limited, expected):
    assert wants_another_session(outcome, limited) == expected
