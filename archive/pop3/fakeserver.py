"""A scriptable POP3 server for tests and for ``mailarchive demo``.

It speaks RFC 1939 with CAPA (RFC 2449) and SASL PLAIN (RFC 5034), over plain TCP or implicit
TLS, and behaves like a small Dovecot where an archiver cares:

- DELE only marks; deletions are applied in the UPDATE state after QUIT, and a connection that
  drops before QUIT deletes nothing (RFC 1939 §6).
- A maildrop is locked per session, like Dovecot's ``pop3_lock_session``: a second login waits
  up to ``lock_wait`` seconds, then gets ``-ERR [IN-USE]``.
- Pipelined commands are answered in order; command lines are capped at 255 octets
  (RFC 2449 §4); idle clients time out.
- Messages are served byte for byte, dot-stuffed (RFC 1939 §3). Only a message that does not
  end with a line break gets a CRLF before the terminating dot line, as real servers add.

Faults are injected through `FakeServerOptions`. Every command is logged in
`FakePop3Server.commands`, with passwords and SASL payloads replaced by ``***``.

Not a production server: passwords sit in memory in plain text and there is no login penalty.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from archive.pop3._fake_session import Session
from archive.pop3._fake_wire import RESP_CODE_RE, assign_uidls

__all__ = ["FakeMailbox", "FakePop3Server", "FakeServerOptions"]

log = logging.getLogger(__name__)

_STOP_JOIN_SECONDS: Final = 2.0


@dataclass
class FakeMailbox:
    """One maildrop. The server changes it in place: deletions land here at QUIT.

    ``messages`` are raw RFC 5322 messages, served exactly as given. Without ``uidls`` each
    message gets the first 16 hex digits of its SHA-256 (with ``-2``, ``-3``… for identical
    copies), assigned once and kept, so UIDLs are unique in the mailbox and stable across
    sessions. Messages appended later get UIDLs at the next login. Explicit ``uidls`` may
    repeat (some servers give identical messages one UIDL) but must be valid RFC 1939 UIDLs.
    """

    password: str = field(repr=False)
    messages: list[bytes]
    uidls: list[str] | None = None

    def __post_init__(self) -> None:
        assign_uidls(self)


@dataclass(frozen=True)
class FakeServerOptions:
    """How the server misbehaves, and the limits it enforces."""

    capabilities: tuple[str, ...] = (
        "TOP",
        "UIDL",
        "USER",
        "RESP-CODES",
        "PIPELINING",
        "SASL PLAIN",
    )
    # Answer -ERR to QUIT and apply none of the session's deletions.
    quit_error: bool = False
    # After a correct password answer -ERR [code], e.g. "IN-USE", "SYS/TEMP", "LOGIN-DELAY".
    login_error_code: str | None = None
    # Close the connection once this many bytes of RETR data (stuffed body and terminator,
    # status lines not counted) have been sent in one session: a connection dropped mid-RETR.
    drop_after_bytes: int | None = None
    # A greeting not starting with "+OK" is sent and the connection closed.
    greeting: str = "+OK mailarchive fake POP3 server ready"
    # Seconds a socket read or write may block; an idle client is logged out without UPDATE.
    timeout: float = 60.0
    # Seconds a second login waits for a locked maildrop before -ERR [IN-USE].
    lock_wait: float = 1.0

    def __post_init__(self) -> None:
        code = self.login_error_code
        if code is not None and not RESP_CODE_RE.fullmatch(code):
            raise ValueError(f"login_error_code {code!r} is not an RFC 2449 response code")
        if self.drop_after_bytes is not None and self.drop_after_bytes < 0:
            raise ValueError("drop_after_bytes must be >= 0")
        if self.timeout <= 0 or self.lock_wait < 0:
            raise ValueError("timeout must be > 0 and lock_wait >= 0")


class FakePop3Server:
    """A threaded POP3 server, on loopback by default. A context manager, or `start()`/`stop()`.

    ``host`` and ``port`` are the bound address once started (``port=0`` picks a free port).
    With ``ssl_context`` every connection starts with a TLS handshake (implicit TLS, RFC 8314).
    The ``mailboxes`` mapping is copied, but the `FakeMailbox` objects are shared and live:
    the server deletes from them at QUIT, and a test may append new mail between sessions.
    """

    def __init__(
        self,
        mailboxes: Mapping[str, FakeMailbox],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        options: FakeServerOptions | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.options = options or FakeServerOptions()
        self.ssl_context = ssl_context
        self.commands: list[tuple[str, str]] = []
        self._mailboxes = dict(mailboxes)
        self._log_lock = threading.Lock()
        self._state = threading.Condition()
        self._locked: set[str] = set()
        self._sessions: set[Session] = set()
        self._stopping = False
        self._tcp: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakePop3Server:
        if self._tcp is not None or self._stopping:
            raise RuntimeError("FakePop3Server can be started once")
        server_class = _TCP6Server if ":" in self.host else _TCPServer
        self._tcp = server_class((self.host, self.port), self)
        bound = self._tcp.socket.getsockname()
        self.host, self.port = str(bound[0]), int(bound[1])
        self._thread = threading.Thread(
            target=self._tcp.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-pop3-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut every open session (no UPDATE for them) and wait briefly."""
        with self._state:
            self._stopping = True
            sessions = list(self._sessions)
            self._state.notify_all()
        tcp, self._tcp = self._tcp, None
        if tcp is None:
            return
        tcp.shutdown()
        tcp.server_close()
        for session in sessions:
            session.abort()
        deadline = time.monotonic() + _STOP_JOIN_SECONDS
        for session in sessions:
            session.thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FakePop3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def mailbox(self, user: str) -> FakeMailbox:
        """The live maildrop of ``user``: messages deleted at QUIT are gone from it."""
        try:
            return self._mailboxes[user]
        except KeyError:
            raise KeyError(f"no mailbox {user!r} on this fake server") from None

    def _record(self, user: str, command: str) -> None:
        with self._log_lock:
            self.commands.append((user, command))

    def _register(self, session: Session) -> bool:
        with self._state:
            if self._stopping:
                return False
            self._sessions.add(session)
            return True

    def _unregister(self, session: Session) -> None:
        with self._state:
            self._sessions.discard(session)

    def _checkout(self, user: str) -> tuple[list[bytes], list[str]] | None:
        """Lock ``user``'s maildrop and snapshot it, or None if it stays locked."""
        deadline = time.monotonic() + self.options.lock_wait
        with self._state:
            while user in self._locked:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    return None
                self._state.wait(remaining)
            box = self._mailboxes[user]
            # Raises on a maildrop a test has made inconsistent; nothing is locked yet then.
            uidls = list(assign_uidls(box))
            self._locked.add(user)
            return list(box.messages), uidls

    def _checkin(self, user: str, snapshot: list[bytes], deleted: set[int]) -> int:
        """Unlock the maildrop, first removing ``deleted``; returns the messages left."""
        with self._state:
            try:
                box = self._mailboxes[user]
                uidls = box.uidls if box.uidls is not None else []
                for index in sorted(deleted, reverse=True):
                    # Only what this session saw: a test may have changed the list meanwhile.
                    if index < len(box.messages) and box.messages[index] is snapshot[index]:
                        del box.messages[index]
                        if index < len(uidls):
                            del uidls[index]
                return len(box.messages)
            finally:
                self._locked.discard(user)
                self._state.notify_all()


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        session = Session(owner, self.request)
        if owner._register(session):
            session.run()


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: FakePop3Server) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("fake POP3 server: unexpected error serving %s", client_address)


class _TCP6Server(_TCPServer):
    address_family = socket.AF_INET6
