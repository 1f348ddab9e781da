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

import base64
import hashlib
import hmac
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO, Final

__all__ = ["FakeMailbox", "FakePop3Server", "FakeServerOptions"]

log = logging.getLogger(__name__)

# RFC 2449 §4: a command line is at most 255 octets, CRLF included.
MAX_COMMAND_LINE: Final = 255
# RFC 5034 §4: a SASL response is not a command line; XOAUTH2 tokens run to kilobytes.
MAX_SASL_LINE: Final = 64 * 1024
# An overlong command is skipped up to this many bytes; beyond that the client is hostile.
_MAX_DISCARD: Final = 64 * 1024
# After our last byte, wait this long for the client to close first, so the kernel sends FIN
# rather than RST (unread pipelined commands would otherwise make it reset the connection and
# the client could lose response bytes it has not read yet).
_CLOSE_DRAIN_SECONDS: Final = 2.0
_STOP_JOIN_SECONDS: Final = 2.0

_UIDL = re.compile(r"[\x21-\x7e]{1,70}")  # RFC 1939 §7
_NUMBER = re.compile(r"[0-9]{1,9}")
_RESP_CODE = re.compile(r"[A-Za-z0-9/-]+")
_LINE_START_DOT = re.compile(rb"^\.", re.MULTILINE)
_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")
_LOGIN_ERROR_TEXT: Final = {
    "IN-USE": "Mailbox is locked",
    "LOGIN-DELAY": "Logged in too recently, try again later",
    "SYS/TEMP": "Temporary server failure, try again later",
    "SYS/PERM": "Permanent server failure",
    "AUTH": "Authentication failed.",
}
_AUTH_FAILED: Final = "-ERR [AUTH] Authentication failed."


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
        _assign_uidls(self)


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
        if code is not None and not _RESP_CODE.fullmatch(code):
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
        self._sessions: set[_Session] = set()
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

    def _register(self, session: _Session) -> bool:
        with self._state:
            if self._stopping:
                return False
            self._sessions.add(session)
            return True

    def _unregister(self, session: _Session) -> None:
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
            uidls = list(_assign_uidls(box))
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


def _assign_uidls(box: FakeMailbox) -> list[str]:
    uidls = box.uidls if box.uidls is not None else []
    if len(uidls) > len(box.messages):
        raise ValueError(f"{len(uidls)} UIDLs for {len(box.messages)} messages")
    for uidl in uidls:
        if not _UIDL.fullmatch(uidl):
            raise ValueError(f"invalid UIDL {uidl!r} (RFC 1939 §7: 1-70 chars 0x21-0x7E)")
    used = set(uidls)
    for message in box.messages[len(uidls) :]:
        if not isinstance(message, bytes):
            raise TypeError(f"messages must be bytes, got {type(message).__name__}")
        base = hashlib.sha256(message).hexdigest()[:16]
        uidl, copy = base, 1
        while uidl in used:
            copy += 1
            uidl = f"{base}-{copy}"
        used.add(uidl)
        uidls.append(uidl)
    box.uidls = uidls
    return uidls


def _dot_stuff(message: bytes) -> bytes:
    """The body of a multi-line response, terminator included (RFC 1939 §3)."""
    stuffed = _LINE_START_DOT.sub(b"..", message)
    if stuffed and not stuffed.endswith(b"\n"):
        # The terminator must start a line; real servers add the missing CRLF.
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _top(message: bytes, lines: int) -> bytes:
    """Header, blank line and the first ``lines`` body lines (RFC 1939 §7, TOP)."""
    end = _END_OF_HEADER.search(message)
    if end is None:
        return message
    body_start = end.end()
    cut = body_start
    for _ in range(lines):
        newline = message.find(b"\n", cut)
        if newline < 0:
            return message
        cut = newline + 1
    return message[:cut]


def _decode_plain(response: str) -> tuple[str, str] | None:
    """(user, password) from a SASL PLAIN response (RFC 4616), or None if malformed."""
    try:
        raw = base64.b64decode(response.encode("ascii"), validate=True)
        authzid, authcid, password = (part.decode("utf-8") for part in raw.split(b"\0"))
    except ValueError:
        return None
    # No proxy logins: an authorization identity must be the user itself.
    if not authcid or authzid not in ("", authcid):
        return None
    return authcid, password


class _LineTooLong(Exception):
    pass


class _Disconnect(Exception):
    """End the session without the UPDATE state: EOF, a drop, or an abusive client."""


class _Session:
    """One connection: the AUTHORIZATION and TRANSACTION states of RFC 1939."""

    def __init__(self, server: FakePop3Server, sock: socket.socket) -> None:
        self.server = server
        self.options = server.options
        self.sock = sock
        self.thread = threading.current_thread()
        self.reader: BinaryIO | None = None
        self.user = ""
        self.user_given = False
        self.authenticated = False
        self.closing = False
        self.snapshot: list[bytes] = []
        self.uidls: list[str] = []
        self.deleted: set[int] = set()
        self.retr_bytes = 0
        words = [c.split() for c in self.options.capabilities if c.split()]
        self.caps = {w[0].upper(): w[1:] for w in words}
        self.mechanisms = {m.upper() for m in self.caps.get("SASL", [])}
        self.handlers: dict[str, Callable[[str], None]] = {
            "STAT": self._stat,
            "LIST": self._list,
            "UIDL": self._uidl,
            "RETR": self._retr,
            "TOP": self._top,
            "DELE": self._dele,
            "RSET": self._rset,
            "NOOP": self._noop,
        }

    def run(self) -> None:
        try:
            self.sock.settimeout(self.options.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.server.ssl_context is not None:
                self.sock = self.server.ssl_context.wrap_socket(self.sock, server_side=True)
            self.reader = self.sock.makefile("rb")
            self._serve()
        except _Disconnect:
            pass
        except OSError as exc:
            # Timeouts, resets, TLS failures, stop(): the client is gone, nothing is deleted.
            log.debug("fake POP3 session %r ended: %s", self.user, exc)
        finally:
            self._release(apply_deletions=False)
            self._close()

    def abort(self) -> None:
        """Called from another thread by stop(): wake the session's blocked read."""
        try:
            # The plain socket call: SSLSocket.shutdown would drop its TLS state under the
            # session thread's feet.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self) -> None:
        self._reply(self.options.greeting)
        if not self.options.greeting.startswith("+OK"):
            return
        while not self.closing:
            try:
                line = self._read_line(MAX_COMMAND_LINE)
            except _LineTooLong:
                self._reply(f"-ERR Command line too long (max {MAX_COMMAND_LINE} octets)")
                continue
            self._dispatch(line.decode("utf-8", "surrogateescape"))

    def _dispatch(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "AUTH":
            self._auth(arg)
            return
        if verb == "USER" and not self.authenticated:
            self.user = arg
        self.server._record(self.user, "PASS ***" if verb == "PASS" else _line_for_log(verb, arg))
        if verb == "CAPA":
            self._multiline("+OK Capability list follows", self.options.capabilities)
        elif verb == "QUIT":
            self._quit()
        elif verb in ("USER", "PASS"):
            if self.authenticated:
                self._reply("-ERR Already logged in")
            elif "USER" not in self.caps:
                self._reply("-ERR USER/PASS not supported, use AUTH")
            elif verb == "USER":
                self.user_given = bool(arg)
                self._reply("+OK" if arg else "-ERR Syntax: USER <name>")
            elif not self.user_given:
                self._reply("-ERR No username given")
            else:
                self._login(self.user, arg)
        elif verb in self.handlers:
            if self.authenticated:
                self.handlers[verb](arg)
            else:
                self._reply("-ERR Not logged in")
        else:
            self._reply("-ERR Unknown command")

    def _auth(self, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if self.authenticated or mechanism != "PLAIN" or "PLAIN" not in self.mechanisms:
            self.server._record(self.user, _line_for_log("AUTH", mechanism, redact=bool(initial)))
            if self.authenticated:
                self._reply("-ERR Already logged in")
            else:
                self._reply("-ERR Unsupported authentication mechanism")
            return
        if initial:
            response = initial
        else:
            # RFC 5034 §4: the two-step form; PLAIN's challenge is empty.
            self._reply("+ ")
            try:
                response = self._read_line(MAX_SASL_LINE).decode("utf-8", "surrogateescape")
            except _LineTooLong:
                response = "="
        if response == "*":
            self.server._record("", "AUTH PLAIN")
            self._reply("-ERR Authentication cancelled")
            return
        credentials = None if response == "=" else _decode_plain(response)
        self.server._record(credentials[0] if credentials else "", "AUTH PLAIN ***")
        if credentials is None:
            self._reply(_AUTH_FAILED)
            return
        self.user = credentials[0]
        self._login(*credentials)

    def _login(self, user: str, password: str) -> None:
        box = self.server._mailboxes.get(user)
        secret = password.encode("utf-8", "surrogateescape")
        if box is None or not hmac.compare_digest(secret, box.password.encode()):
            self.user, self.user_given = "", False
            self._reply(_AUTH_FAILED)
            return
        code = self.options.login_error_code
        if code is not None:
            self._reply(f"-ERR [{code}] {_LOGIN_ERROR_TEXT.get(code, 'Login refused')}")
            return
        try:
            maildrop = self.server._checkout(user)
        except (ValueError, TypeError) as exc:
            self._reply(f"-ERR [SYS/PERM] Maildrop is inconsistent: {exc}")
            return
        if maildrop is None:
            self._reply("-ERR [IN-USE] Mailbox is locked")
            return
        self.snapshot, self.uidls = maildrop
        self.authenticated = True
        count, size = self._totals()
        self._reply(f"+OK Logged in, maildrop has {count} messages ({size} octets)")

    def _quit(self) -> None:
        self.closing = True
        if not self.authenticated:
            self._reply("+OK Bye")
        elif self.options.quit_error:
            self._release(apply_deletions=False)
            self._reply("-ERR Some deleted messages not removed")
        else:
            # Delete and unlock before answering, so a client that reconnects at once finds
            # the maildrop updated and free (RFC 1939 §6, UPDATE state).
            left = self._release(apply_deletions=True)
            self._reply(f"+OK Logging out ({left} messages left)")

    def _release(self, *, apply_deletions: bool) -> int:
        if not self.authenticated:
            return 0
        self.authenticated = False
        deleted = self.deleted if apply_deletions else set()
        return self.server._checkin(self.user, self.snapshot, deleted)

    def _totals(self) -> tuple[int, int]:
        live = [m for i, m in enumerate(self.snapshot) if i not in self.deleted]
        return len(live), sum(len(m) for m in live)

    def _number(self, arg: str, verb: str) -> int | None:
        """The 0-based index of a live message, or None after answering -ERR."""
        if not _NUMBER.fullmatch(arg):
            self._reply(f"-ERR Syntax: {verb} <message number>")
            return None
        number = int(arg)
        if not 1 <= number <= len(self.snapshot):
            self._reply(f"-ERR There is no message {number}")
            return None
        if number - 1 in self.deleted:
            self._reply(f"-ERR Message {number} is deleted")
            return None
        return number - 1

    def _stat(self, arg: str) -> None:
        count, size = self._totals()
        self._reply(f"+OK {count} {size}")

    def _list(self, arg: str) -> None:
        self._listing(arg, "LIST", lambda i: str(len(self.snapshot[i])))

    def _uidl(self, arg: str) -> None:
        if "UIDL" not in self.caps:
            self._reply("-ERR Unknown command")
            return
        self._listing(arg, "UIDL", lambda i: self.uidls[i])

    def _listing(self, arg: str, verb: str, value: Callable[[int], str]) -> None:
        if arg:
            index = self._number(arg, verb)
            if index is not None:
                self._reply(f"+OK {index + 1} {value(index)}")
            return
        count, size = self._totals()
        lines = [f"{i + 1} {value(i)}" for i in range(len(self.snapshot)) if i not in self.deleted]
        self._multiline(f"+OK {count} messages ({size} octets)", lines)

    def _retr(self, arg: str) -> None:
        index = self._number(arg, "RETR")
        if index is None:
            return
        message = self.snapshot[index]
        status = f"+OK {len(message)} octets\r\n".encode()
        body = _dot_stuff(message)
        limit = self.options.drop_after_bytes
        if limit is not None and self.retr_bytes + len(body) >= limit:
            self._send(status + body[: max(0, limit - self.retr_bytes)])
            raise _Disconnect(f"drop_after_bytes={limit} reached in RETR {index + 1}")
        self.retr_bytes += len(body)
        self._send(status + body)

    def _top(self, arg: str) -> None:
        number, _, lines = arg.partition(" ")
        if "TOP" not in self.caps:
            self._reply("-ERR Unknown command")
        elif not _NUMBER.fullmatch(lines):
            self._reply("-ERR Syntax: TOP <message number> <lines>")
        elif (index := self._number(number, "TOP")) is not None:
            self._send(b"+OK\r\n" + _dot_stuff(_top(self.snapshot[index], int(lines))))

    def _dele(self, arg: str) -> None:
        index = self._number(arg, "DELE")
        if index is not None:
            self.deleted.add(index)
            self._reply(f"+OK Message {index + 1} marked for deletion")

    def _rset(self, arg: str) -> None:
        self.deleted.clear()
        count, size = self._totals()
        self._reply(f"+OK maildrop has {count} messages ({size} octets)")

    def _noop(self, arg: str) -> None:
        self._reply("+OK")

    def _read_line(self, limit: int) -> bytes:
        """One line without its CRLF (a bare LF is accepted too)."""
        assert self.reader is not None
        line = self.reader.readline(limit)
        if line.endswith(b"\n"):
            return line[:-1].removesuffix(b"\r")
        if len(line) < limit:
            raise _Disconnect("client closed the connection")
        skipped = 0
        while not line.endswith(b"\n"):
            line = self.reader.readline(8192)
            skipped += len(line)
            if not line or skipped > _MAX_DISCARD:
                raise _Disconnect("overlong line")
        raise _LineTooLong

    def _reply(self, line: str) -> None:
        self._send(line.encode("utf-8", "surrogateescape") + b"\r\n")

    def _multiline(self, status: str, lines: Iterable[str]) -> None:
        body = "".join(f"{line}\r\n" for line in lines).encode("utf-8")
        self._send(status.encode("utf-8") + b"\r\n" + _dot_stuff(body))

    def _send(self, data: bytes) -> None:
        # One sendall per response: with TCP_NODELAY that avoids tiny segments per line.
        self.sock.sendall(data)

    def _close(self) -> None:
        self.server._unregister(self)
        if self.reader is not None:
            self.reader.close()
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
            self.sock.settimeout(_CLOSE_DRAIN_SECONDS)
            deadline = time.monotonic() + _CLOSE_DRAIN_SECONDS
            while time.monotonic() < deadline and socket.socket.recv(self.sock, 65536):
                pass
        except OSError:
            pass
        finally:
            self.sock.close()


def _line_for_log(verb: str, arg: str, *, redact: bool = False) -> str:
    if redact:
        return f"{verb} {arg} ***"
    return f"{verb} {arg}" if arg else verb


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        session = _Session(owner, self.request)
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
