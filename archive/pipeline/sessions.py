"""Session planning: how much one POP3 session takes, and whether another one follows.

What is new in a listing is the ledger's decision (`archive.pipeline.ledger`); this module
only bounds a session (`cap_session`) and decides on a follow-up (`wants_another_session`).
"""

from __future__ import annotations

from dataclasses import dataclass

from archive.pop3.source import Listed


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """What one POP3 session found and did, for deciding whether to open another.

    `listed`: messages in the listing; `new`: those not archived before that this session
    retrieved (re-read copies under a shared UIDL found archived do not count); `capped`:
    the per-session limits left new mail for a later session.
    """

    listed: int = 0
    new: int = 0
    capped: bool = False


def cap_session(
    wanted: list[Listed], max_messages: int | None, max_bytes: int | None
) -> list[Listed]:
    """The first messages that fit the per-session limits; at least one, so a run progresses."""
    chosen: list[Listed] = []
    total = 0
    for item in wanted:
        if max_messages is not None and len(chosen) >= max_messages:
            break
        size = item.size or 0
        if max_bytes is not None and chosen and total + size > max_bytes:
            break
        chosen.append(item)
        total += size
    return chosen


def wants_another_session(
    session: SessionOutcome, listing_limited: bool | None
) -> tuple[bool, bool]:
    """(another session?, is it a probe?) after a session that brought new mail.

    Another session follows when we stopped at our own per-session cap, or when the server
    showed only mail we did not have: Gmail lists ~250 not-yet-downloaded messages per
    session. Whether a server does that is learnt by the first such follow-up session (the
    probe) and remembered per mailbox (`listing_limited`), so a server that lists everything
    is not logged into twice on every run. A wrong "no" only delays mail to the next run:
    what was not listed stays on the server.
    """
    if session.new == 0:
        return False, False
    if session.capped:
        return True, False
    if session.new == session.listed and listing_limited is not False:
        return True, listing_limited is None
    return False, False
