"""A scriptable POP3 server for tests and for ``mailarchive demo``.

It speaks RFC 1939 with CAPA (RFC 2449), AUTH (RFC 5034) with SASL PLAIN, LOGIN, XOAUTH2 and
OAUTHBEARER (RFC 7628), and optionally APOP, over plain TCP or implicit TLS. By default it
behaves like a small Dovecot where an archiver cares:

- DELE only marks; deletions are applied in the UPDATE state after QUIT, and a connection that
  drops before QUIT deletes nothing (RFC 1939 §6).
- A maildrop is locked per session, like Dovecot's ``pop3_lock_session``: a second login waits
  up to ``lock_wait`` seconds, then gets ``-ERR [IN-USE]``.
- Pipelined commands are answered in order; command lines are capped at 255 octets
  (RFC 2449 §4); idle clients time out.
- Messages are served byte for byte, dot-stuffed (RFC 1939 §3). Only a message that does not
  end with a line break gets a CRLF before the terminating dot line, as real servers add.

`FakeServerOptions` then scripts what a real Dovecot will not show on demand: login refusals
(RFC 2449 §8 LOGIN-DELAY, RFC 3206 codes, a per-user connection cap), EXPIRE 0 (RFC 2449
§6.7), Gmail's capped listing of not-yet-downloaded mail, Microsoft's two-step-only XOAUTH2,
wrong LIST sizes, a slow link, a failed UPDATE, and broken or endless responses. A test may
also renumber every UIDL (`FakeMailbox.reset_uidls`), as a server migration does. Every option
defaults to the plain behaviour above.

Every command is logged in `FakePop3Server.commands`, with passwords, SASL payloads and APOP
digests replaced by ``***``. `FakePop3Server.login_count`, `peak_sessions` and
`peak_connections` count what clients did.

Not a production server: passwords sit in memory in plain text and there is no login penalty.

Layout: this module holds the public classes and the server lifecycle; ``_fake_session``
the per-connection states, ``_fake_auth`` SASL and APOP, ``_fake_state`` locks, UPDATE and
login accounting, ``_fake_faults`` the broken responses, ``_fake_wire`` wire helpers.
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

from archive.pop3.fake.faults import FAULTS
from archive.pop3.fake.session import Session
from archive.pop3.fake.state import Maildrops
from archive.pop3.fake.wire import (
    RESP_CODE_RE,
    UIDL_RE,
    assign_uidls,
)

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
    repeat (some servers give identical messages one UIDL) and must be valid RFC 1939 UIDLs
    as str; as bytes they may also hold octets 0x80-0xFF, as some servers send.

    ``oauth_token`` is the bearer token XOAUTH2 and OAUTHBEARER accept; None refuses OAuth.
    With ``FakeServerOptions.max_listed``, the UIDLs of messages retrieved in a session that
    ended with QUIT are remembered as `downloaded` and not listed again.
    """

    password: str = field(repr=False)
    messages: list[bytes]
    uidls: list[str | bytes] | None = None
    oauth_token: str | None = field(default=None, repr=False)
    _downloaded: set[str | bytes] = field(
        default_factory=set, init=False, repr=False, compare=False
    )
    _generation: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        assign_uidls(self)

    @property
    def downloaded(self) -> frozenset[str | bytes]:
        """UIDLs marked downloaded (only with ``max_listed``): Gmail hides them for good."""
        return frozenset(self._downloaded)

    def reset_uidls(self, prefix: str = "new") -> list[str]:
        """Give every message a new, unique UIDL, as a server migration or index rebuild does.

        The UIDLs are ``{prefix}{n}-{i}``, with n counting the resets of this mailbox and i the
        message's position from 1, so each reset yields UIDLs never seen before. Downloaded
        marks (``max_listed``) name old UIDLs, so every message is listed again. Call it
        between sessions: an open session keeps the UIDLs it started with.
        """
        self._generation += 1
        uidls = [f"{prefix}{self._generation}-{i}" for i in range(1, len(self.messages) + 1)]
        for uidl in uidls[:1]:
            if not UIDL_RE.fullmatch(uidl):
                raise ValueError(f"prefix {prefix!r} makes invalid UIDL {uidl!r} (RFC 1939 §7)")
        self.uidls = list(uidls)
        return uidls


@dataclass(frozen=True)
class FakeServerOptions:
    """How the server misbehaves, and the limits it enforces. Defaults: a plain Dovecot."""

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
    # Enter UPDATE on QUIT (deletions applied), then close the connection without answering.
    quit_drop: bool = False
    # After correct credentials answer -ERR [code], e.g. "IN-USE", "SYS/TEMP", "LOGIN-DELAY".
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
    # With login_error_code: only the first N correct logins (counted over the whole server)
    # get the error, later ones succeed. None: every login gets it.
    login_error_count: int | None = None
    # Refuse an initial response on the AUTH line for XOAUTH2/OAUTHBEARER, like Microsoft 365.
    oauth_two_step_only: bool = False
    # RFC 1939 §7: put a <pid.clock@host> timestamp in the greeting and accept APOP.
    apop: bool = False
    # RFC 2449 §8: advertise "LOGIN-DELAY n" and refuse, with -ERR [LOGIN-DELAY], a login less
    # than n seconds after the same user's previous successful login.
    login_delay: int | None = None
    # RFC 2449 §6.7: advertise "EXPIRE x" ("0", "NEVER" or days). With "0", messages
    # retrieved (RETR) in a session are deleted at QUIT even without DELE.
    expire: str | None = None
    # Gmail: a session lists only the first N messages not yet downloaded; what was retrieved
    # is marked downloaded at QUIT (not on a dropped connection) and never listed again.
    max_listed: int | None = None
    # Added to every size LIST reports (Microsoft's estimates); RETR still sends the bytes.
    list_size_delta: int = 0
    # (bytes per write, seconds between writes) for every multi-line response: a slow link.
    trickle: tuple[int, float] | None = None
    # A broken server: "garbage_status", "oversized_status", "oversized_listing_line",
    # "endless_retr", "stall_retr", "drop_before_quit" or "drop_after_update" (see
    # archive/pop3/fake/faults.py).
    fault: str | None = None
    # Dovecot's mail_max_userip_connections: a login for a user with that many sessions past
    # authentication gets -ERR [IN-USE] Maximum number of connections from user+IP exceeded.
    max_connections_per_user: int | None = None
    # At QUIT apply only the first N marked deletions, then answer -ERR [SYS/TEMP] (a failed
    # UPDATE, RFC 1939 §6). Downloaded marks (max_listed) are still recorded.
    quit_partial: int | None = None

    def __post_init__(self) -> None:
        code = self.login_error_code
        if code is not None and not RESP_CODE_RE.fullmatch(code):
            raise ValueError(f"login_error_code {code!r} is not an RFC 2449 response code")
        if self.login_error_count is not None and (code is None or self.login_error_count < 0):
            raise ValueError("login_error_count needs login_error_code and must be >= 0")
        for name in (
            "drop_after_bytes",
            "login_delay",
            "max_listed",
            "quit_partial",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.timeout <= 0 or self.lock_wait < 0:
            raise ValueError("timeout must be > 0 and lock_wait >= 0")
        if self.expire is not None and not (self.expire == "NEVER" or self.expire.isdigit()):
            raise ValueError(f"expire {self.expire!r} must be digits or 'NEVER' (RFC 2449 §6.7)")
        if self.trickle is not None and (self.trickle[0] < 1 or self.trickle[1] < 0):
            raise ValueError("trickle must be (bytes >= 1, seconds >= 0)")
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault {self.fault!r} is not one of {sorted(FAULTS)}")
        if self.max_connections_per_user is not None and self.max_connections_per_user < 1:
            raise ValueError("max_connections_per_user must be >= 1")
        if sum((self.quit_error, self.quit_partial is not None, self.quit_drop)) > 1:
            raise ValueError("quit_error, quit_partial and quit_drop exclude each other")

    def advertised_capabilities(self) -> tuple[str, ...]:
        """The CAPA lines: ``capabilities`` plus LOGIN-DELAY and EXPIRE when set."""
        extra = []
        if self.login_delay is not None:
            extra.append(f"LOGIN-DELAY {self.login_delay}")
        if self.expire is not None:
            extra.append(f"EXPIRE {self.expire}")
        present = {c.split()[0].upper() for c in self.capabilities if c.split()}
        return self.capabilities + tuple(c for c in extra if c.split()[0] not in present)


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
        self._maildrops = Maildrops(dict(mailboxes), self.options)
        self._log_lock = threading.Lock()
        self._state = threading.Lock()
        self._sessions: set[Session] = set()
        self._stopping = False
        self._stop_event = threading.Event()  # wakes trickled and endless responses
        self._peak_connections = 0
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
        self._stop_event.set()
        with self._state:
            self._stopping = True
            sessions = list(self._sessions)
        self._maildrops.close()
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
            return self._maildrops.mailboxes[user]
        except KeyError:
            raise KeyError(f"no mailbox {user!r} on this fake server") from None

    def login_count(self, user: str) -> int:
        """Successful logins of ``user`` so far (sessions that reached TRANSACTION)."""
        return self._maildrops.login_count(user)

    def peak_sessions(self, user: str) -> int:
        """Most sessions of ``user`` past authentication at once (those waiting for the lock
        included), as ``max_connections_per_user`` counts them."""
        return self._maildrops.peak_sessions(user)

    @property
    def peak_connections(self) -> int:
        """Most client connections open at once, logged in or not."""
        with self._state:
            return self._peak_connections

    def _record(self, user: str, command: str) -> None:
        with self._log_lock:
            self.commands.append((user, command))

    def _register(self, session: Session) -> bool:
        with self._state:
            if self._stopping:
                return False
            self._sessions.add(session)
            self._peak_connections = max(self._peak_connections, len(self._sessions))
            return True

    def _unregister(self, session: Session) -> None:
        with self._state:
            self._sessions.discard(session)


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
