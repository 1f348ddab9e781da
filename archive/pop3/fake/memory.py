"""An in-memory `MailSource`: POP3 semantics without sockets, for fast pipeline tests.

`MemoryPop3` holds maildrops by user name; its `connect` is a `Connector`. It keeps what
RFC 1939 promises and the archiver relies on:
- a session sees the maildrop as it was at login, numbered from 1 (§4), and holds the
  maildrop's lock: a second login to it is refused with -ERR [IN-USE] (§4, RFC 2449 §8);
- DELE only marks (§5); marked messages are removed when QUIT is answered +OK (§6), and a
  session closed or dropped without that deletes nothing;
- with `expire_zero` (RFC 2449 §6.7 `EXPIRE 0`) QUIT also removes what was retrieved;
- with `max_listed`, a session lists at most that many messages not yet downloaded, and
  what a session retrieved and QUIT is never listed again (Gmail's "recent" behaviour).

Every command is logged in `MemoryPop3.log` as (session number, command line), PASS
redacted. `MemoryFaults` scripts what goes wrong; change it between sessions as needed.
The TCP `archive.pop3.fake.server.FakePop3Server` stays for client tests and the demo.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from archive.errors import (
    Pop3AuthError,
    Pop3ConnectionError,
    Pop3ServerError,
    Pop3TemporaryError,
)
from archive.pop3.fake.wire import top_of
from archive.pop3.source import Endpoint, Listed, RetrievedMessage
from archive.pop3.types import AuthMethod

__all__ = ["MemoryFaults", "MemoryMaildrop", "MemoryPop3", "MemorySession"]


class _Copy:
    """One message in a maildrop; compared by identity, as two copies may be identical."""

    __slots__ = ("downloaded", "raw", "uidl")

    def __init__(self, raw: bytes, uidl: bytes) -> None:
        self.raw = raw
        self.uidl = uidl
        self.downloaded = False


def _as_uidl(uidl: str | bytes) -> bytes:
    # The client keeps a unique-id's octets as sent (archive.pop3.uidl); a str is ASCII.
    return uidl if isinstance(uidl, bytes) else uidl.encode("ascii")


class MemoryMaildrop:
    """One user's maildrop: raw messages (bytes) and their unique-ids (octets; a str is
    taken as ASCII).

    Without `uidls`, message i gets `m{i}`; ids given may repeat (servers give identical
    messages one unique-id). Sessions change the maildrop in place at QUIT.
    """

    def __init__(
        self,
        password: str,
        messages: Sequence[bytes] = (),
        uidls: Sequence[str | bytes] | None = None,
    ) -> None:
        if uidls is not None and len(uidls) != len(messages):
            raise ValueError(f"{len(uidls)} unique-ids for {len(messages)} messages")
        self.password = password
        self._copies: list[_Copy] = []
        self._next = 0
        self.locked = False
        for i, raw in enumerate(messages):
            self.add(raw, None if uidls is None else uidls[i])

    def add(self, raw: bytes, uidl: str | bytes | None = None) -> bytes:
        """Deliver a message; returns its unique-id. Seen by sessions that log in later."""
        if not isinstance(raw, bytes):
            raise TypeError(f"messages must be bytes, got {type(raw).__name__}")
        self._next += 1
        copy = _Copy(raw, _as_uidl(f"m{self._next}" if uidl is None else uidl))
        self._copies.append(copy)
        return copy.uidl

    @property
    def messages(self) -> list[bytes]:
        return [copy.raw for copy in self._copies]

    @property
    def uidls(self) -> list[bytes]:
        return [copy.uidl for copy in self._copies]

    def remove(self, uidl: str | bytes) -> None:
        """Take the messages listed under `uidl` away, as another client's deletion does."""
        gone = _as_uidl(uidl)
        self._copies = [copy for copy in self._copies if copy.uidl != gone]

    def relabel(self, uidls: Sequence[str | bytes]) -> None:
        """Give every message a new unique-id, as a server migration (a UIDL reset) does."""
        if len(uidls) != len(self._copies):
            raise ValueError(f"{len(uidls)} unique-ids for {len(self._copies)} messages")
        for copy, uidl in zip(self._copies, uidls, strict=True):
            copy.uidl = _as_uidl(uidl)
            copy.downloaded = False

    def _remove(self, gone: set[int]) -> None:
        self._copies = [copy for copy in self._copies if id(copy) not in gone]


@dataclass
class MemoryFaults:
    """What goes wrong, counted per session; all off by default (a well-behaved server)."""

    # The connection drops when a session asks for its (n+1)-th RETR: n messages arrive.
    drop_after_retrieved: int | None = None
    # QUIT is answered by a closed connection; `applied_before_drop`: the server had
    # entered UPDATE and deleted what was marked, else it deleted nothing.
    drop_on_quit: bool = False
    applied_before_drop: bool = False
    # QUIT is answered -ERR and nothing is deleted (RFC 1939 §6 allows partial removal).
    quit_error: bool = False
    # Correct credentials are answered -ERR [code] (e.g. "IN-USE", "SYS/TEMP", "AUTH"),
    # for the next `login_error_count` logins (None: every login).
    login_error_code: str | None = None
    login_error_count: int | None = None


@dataclass
class MemoryPop3:
    """A POP3 server in memory: `connect` opens a `MemorySession` (a `Connector`)."""

    maildrops: dict[str, MemoryMaildrop]
    faults: MemoryFaults = field(default_factory=MemoryFaults)
    login_delay: int | None = None
    expire_zero: bool = False
    max_listed: int | None = None
    # TOP is optional (RFC 1939 §7): without it, CAPA lacks TOP and TOP is refused.
    offers_top: bool = True
    log: list[tuple[int, str]] = field(default_factory=list)
    sessions: int = 0
    open_sessions: int = 0
    peak_open_sessions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connect(self, endpoint: Endpoint) -> MemorySession:
        with self._lock:
            self.sessions += 1
            self.open_sessions += 1
            self.peak_open_sessions = max(self.peak_open_sessions, self.open_sessions)
            number = self.sessions
        return MemorySession(self, endpoint, number)

    def commands(self, prefix: str = "") -> list[str]:
        """Every logged command line starting with `prefix`, in order, all sessions."""
        return [line for _, line in self.log if line.startswith(prefix)]

    def _record(self, session: int, line: str) -> None:
        with self._lock:
            self.log.append((session, line))

    def _closed(self) -> None:
        with self._lock:
            self.open_sessions -= 1


class MemorySession:
    """One session of `MemoryPop3`; implements `archive.pop3.source.MailSource`."""

    def __init__(self, server: MemoryPop3, endpoint: Endpoint, number: int) -> None:
        self.server = server
        self.endpoint = endpoint
        self.number = number
        self._drop: MemoryMaildrop | None = None
        self._view: list[_Copy] = []
        self._marked: set[int] = set()
        self._retrieved: set[int] = set()
        self._retrs = 0
        self._open = True

    @property
    def login_delay(self) -> int | None:
        return self.server.login_delay

    @property
    def expires_on_retrieval(self) -> bool:
        return self.server.expire_zero

    def login(self, username: str, secret: str, method: AuthMethod = "auto") -> None:
        where = self.endpoint.describe()
        if method in ("auto", "user"):
            self._command(f"USER {username}")
            self._command("PASS ***")
        else:
            self._command(f"AUTH {method.upper()}")
        drop = self.server.maildrops.get(username)
        if drop is None or drop.password != secret:
            raise Pop3AuthError(f"{where}: login failed: -ERR [AUTH] Authentication failed.")
        faults = self.server.faults
        code = faults.login_error_code
        if code is not None and faults.login_error_count != 0:
            if faults.login_error_count is not None:
                faults.login_error_count -= 1
            error = Pop3AuthError if code == "AUTH" else Pop3TemporaryError
            raise error(f"{where}: login deferred by server: -ERR [{code}]")
        if drop.locked:
            raise Pop3TemporaryError(f"{where}: login deferred by server: -ERR [IN-USE]")
        drop.locked = True
        self._drop = drop
        visible = list(drop._copies)
        if self.server.max_listed is not None:
            visible = [copy for copy in visible if not copy.downloaded][: self.server.max_listed]
        self._view = visible

    def listing(self) -> list[Listed]:
        self._command("UIDL")
        self._command("LIST")
        return [
            Listed(number, copy.uidl, len(copy.raw))
            for number, copy in enumerate(self._view, start=1)
        ]

    def retrieve(self, numbers: Sequence[int], window: int = 8) -> Iterator[RetrievedMessage]:
        for number in numbers:
            self._command(f"RETR {number}")
            limit = self.server.faults.drop_after_retrieved
            if limit is not None and self._retrs >= limit:
                self._hang_up()
                raise Pop3ConnectionError(
                    f"{self.endpoint.describe()}: connection closed during RETR {number}"
                )
            copy = self._copy(number, "RETR")
            self._retrs += 1
            self._retrieved.add(id(copy))
            raw = copy.raw
            yield RetrievedMessage(
                number, hashlib.sha256(raw).hexdigest(), len(raw), io.BytesIO(raw)
            )

    def top(self, number: int, lines: int = 0) -> bytes:
        if not self.server.offers_top:
            # As the client does when CAPA lacks TOP: refused without sending it.
            raise Pop3ServerError(f"{self.endpoint.describe()}: server does not offer TOP")
        self._command(f"TOP {number} {lines}")
        return top_of(self._copy(number, "TOP").raw, lines)

    def delete(self, numbers: Sequence[int]) -> list[int]:
        acknowledged = []
        for number in numbers:
            self._command(f"DELE {number}")
            try:
                copy = self._copy(number, "DELE")
            except Pop3ServerError:
                continue  # -ERR: not acknowledged, as the real client reports it
            self._marked.add(id(copy))
            acknowledged.append(number)
        return acknowledged

    def quit(self) -> None:
        self._command("QUIT")
        faults = self.server.faults
        where = self.endpoint.describe()
        if faults.quit_error:
            self._hang_up()
            raise Pop3ServerError(f"{where}: QUIT failed, deletions not confirmed: -ERR")
        if faults.drop_on_quit:
            if faults.applied_before_drop:
                self._update()
            self._hang_up()
            raise Pop3ConnectionError(f"{where}: connection closed while reading QUIT")
        self._update()
        self._hang_up()

    def close(self) -> None:
        if self._open:
            self._hang_up()

    def _update(self) -> None:
        # RFC 1939 §6: the UPDATE state removes the marked messages; EXPIRE 0 also expires
        # what was retrieved, and a retrieved message counts as downloaded (max_listed).
        drop = self._drop
        if drop is None:
            return
        gone = set(self._marked)
        if self.server.expire_zero:
            gone |= self._retrieved
        for copy in self._view:
            if id(copy) in self._retrieved:
                copy.downloaded = True
        drop._remove(gone)

    def _hang_up(self) -> None:
        self._open = False
        if self._drop is not None:
            self._drop.locked = False
            self._drop = None
        self.server._closed()

    def _command(self, line: str) -> None:
        if not self._open:
            raise Pop3ConnectionError(f"{self.endpoint.describe()}: connection closed")
        self.server._record(self.number, line)

    def _copy(self, number: int, command: str) -> _Copy:
        if self._drop is None:
            raise Pop3ServerError(f"{self.endpoint.describe()}: {command} before login")
        copy = self._view[number - 1] if 1 <= number <= len(self._view) else None
        if copy is None or id(copy) in self._marked:
            raise Pop3ServerError(
                f"{self.endpoint.describe()}: {command} {number} refused: no such message"
            )
        return copy
