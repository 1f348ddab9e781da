"""State the sessions of one fake POP3 server share: maildrop locks, the UPDATE state, and login
accounting (scripted refusals, LOGIN-DELAY, the per-user connection cap, counters).

- A maildrop is locked per session, as Dovecot's ``pop3_lock_session`` does; a second login
  waits up to ``lock_wait`` seconds for it.
- UPDATE (RFC 1939 §6) applies a session's deletions to the live `FakeMailbox`, only for
  messages the session saw, and with ``max_listed`` records what it retrieved as downloaded.

Private to `archive.pop3.fake.server`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

from archive.pop3.fake.wire import LOGIN_ERROR_TEXT, Maildrop, assign_uidls

if TYPE_CHECKING:
    from archive.pop3.fake.server import FakeMailbox, FakeServerOptions


class Maildrops:
    """The mailboxes of one server and everything about them that outlives a session."""

    def __init__(self, mailboxes: dict[str, FakeMailbox], options: FakeServerOptions) -> None:
        self.mailboxes = mailboxes
        self.options = options
        self._state = threading.Condition()
        self._locked: set[str] = set()
        self._closed = False
        self._login_errors = 0
        self._logins: Counter[str] = Counter()
        self._last_login: dict[str, float] = {}
        self._admitted: Counter[str] = Counter()
        self._peak_sessions: Counter[str] = Counter()

    def close(self) -> None:
        """The server is stopping: logins waiting for a lock give up at once."""
        with self._state:
            self._closed = True
            self._state.notify_all()

    def login_count(self, user: str) -> int:
        with self._state:
            return self._logins[user]

    def peak_sessions(self, user: str) -> int:
        with self._state:
            return self._peak_sessions[user]

    def admit(self, user: str) -> str | None:
        """After correct credentials: the scripted refusal, if any, else count the session."""
        options = self.options
        with self._state:
            code, count = options.login_error_code, options.login_error_count
            if code is not None and (count is None or self._login_errors < count):
                self._login_errors += 1
                return f"-ERR [{code}] {LOGIN_ERROR_TEXT.get(code, 'Login refused')}"
            cap = options.max_connections_per_user
            if cap is not None and self._admitted[user] >= cap:
                return "-ERR [IN-USE] Maximum number of connections from user+IP exceeded"
            delay, last = options.login_delay, self._last_login.get(user)
            if delay is not None and last is not None and time.monotonic() - last < delay:
                return f"-ERR [LOGIN-DELAY] Logged in less than {delay} seconds ago"
            self._admitted[user] += 1
            self._peak_sessions[user] = max(self._peak_sessions[user], self._admitted[user])
            return None

    def dismiss(self, user: str) -> None:
        with self._state:
            self._admitted[user] -= 1

    def checkout(self, user: str) -> Maildrop | None:
        """Lock ``user``'s maildrop and snapshot it, or None if it stays locked."""
        deadline = time.monotonic() + self.options.lock_wait
        with self._state:
            while user in self._locked:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._state.wait(remaining)
            box = self.mailboxes[user]
            # Raises on a maildrop a test has made inconsistent; nothing is locked yet then.
            uidls = list(assign_uidls(box))
            positions = list(range(len(uidls)))
            if self.options.max_listed is not None:
                fresh = [i for i in positions if uidls[i] not in box._downloaded]
                positions = fresh[: self.options.max_listed]
            self._locked.add(user)
            self._logins[user] += 1
            self._last_login[user] = time.monotonic()
            return Maildrop(
                [box.messages[i] for i in positions], [uidls[i] for i in positions], positions
            )

    def checkin(
        self,
        user: str,
        maildrop: Maildrop,
        deleted: set[int],
        retrieved: set[int],
        limit: int | None,
    ) -> int:
        """The UPDATE state and unlock: mark ``retrieved`` downloaded (``max_listed``), delete
        the first ``limit`` (or all) of ``deleted``; returns the messages left."""
        with self._state:
            try:
                box = self.mailboxes[user]
                if self.options.max_listed is not None:
                    box._downloaded.update(maildrop.uidls[i] for i in retrieved)
                uidls = box.uidls if box.uidls is not None else []
                for index in sorted(sorted(deleted)[:limit], reverse=True):
                    position = maildrop.positions[index]
                    # Only what this session saw: a test may have changed the list meanwhile.
                    if (
                        position < len(box.messages)
                        and box.messages[position] is maildrop.messages[index]
                    ):
                        del box.messages[position]
                        if position < len(uidls):
                            del uidls[position]
                return len(box.messages)
            finally:
                self._locked.discard(user)
                self._state.notify_all()
