"""One connection of the fake POP3 server: the AUTHORIZATION, TRANSACTION and UPDATE states.

RFC 1939 §3-§7, with CAPA (RFC 2449) and AUTH (RFC 5034). Private to
`archive.pop3.fake.server`, whose docstring describes the behaviour.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from archive.pop3.fake.auth import (
    MECHANISMS,
    OAUTH_MECHANISMS,
    SaslCancelled,
    apop_ok,
    authenticate,
    password_ok,
)
from archive.pop3.fake.faults import (
    QUIT_FAULTS,
    RETR_FAULTS,
    FaultDisconnect,
    faulty_retr,
    oversized_listing_value,
)
from archive.pop3.fake.lines import LineIO, LineTooLong, SessionDisconnect
from archive.pop3.fake.wire import (
    AUTH_FAILED,
    CLOSE_DRAIN_SECONDS,
    MAX_COMMAND_LINE,
    MAX_SASL_LINE,
    NUMBER_RE,
    Maildrop,
    dot_stuff,
    line_for_log,
    top_of,
    uidl_on_wire,
)

if TYPE_CHECKING:
    from archive.pop3.fake.server import FakePop3Server

log = logging.getLogger("archive.pop3.fake.server")


class Session(LineIO):
    """One connection: the AUTHORIZATION and TRANSACTION states of RFC 1939."""

    def __init__(self, server: FakePop3Server, sock: socket.socket) -> None:
        self.server = server
        self.options = server.options
        self.maildrops = server._maildrops
        self.sock = sock
        self.thread = threading.current_thread()
        self.reader: BinaryIO | None = None
        self.user = ""
        self.user_given = False
        self.admitted: str | None = None  # counted by the server as a session of this user
        self.authenticated = False
        self.closing = False
        self.maildrop = Maildrop([], [], [])
        self.deleted: set[int] = set()
        self.retrieved: set[int] = set()
        self.retr_bytes = 0
        # RFC 1939 §7: APOP's timestamp is "<process-ID.clock@hostname>", unique per greeting.
        self.timestamp = f"<{os.getpid()}.{time.time_ns()}@localhost>"
        self.capabilities = self.options.advertised_capabilities()
        words = [c.split() for c in self.capabilities if c.split()]
        self.caps = {w[0].upper(): w[1:] for w in words}
        self.mechanisms = {m.upper() for m in self.caps.get("SASL", [])} & MECHANISMS
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
        except (SessionDisconnect, FaultDisconnect):
            pass
        except OSError as exc:
            # Timeouts, resets, TLS failures, stop(): the client is gone, nothing is deleted.
            log.debug("fake POP3 session %r ended: %s", self.user, exc)
        finally:
            self._release(update=False)
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
        greeting = self.options.greeting
        if self.options.apop and greeting.startswith("+OK"):
            greeting = f"{greeting} {self.timestamp}"
        self._reply(greeting)
        if not greeting.startswith("+OK"):
            return
        while not self.closing:
            try:
                line = self._read_line(MAX_COMMAND_LINE)
            except LineTooLong:
                self._reply(f"-ERR Command line too long (max {MAX_COMMAND_LINE} octets)")
                continue
            self._dispatch(line.decode("utf-8", "surrogateescape"))

    def _dispatch(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "AUTH":
            self._auth(arg)
            return
        if verb == "APOP":
            self._apop(arg)
            return
        if verb == "USER" and not self.authenticated:
            self.user = arg
        self.server._record(self.user, "PASS ***" if verb == "PASS" else line_for_log(verb, arg))
        if verb == "CAPA":
            self._multiline("+OK Capability list follows", self.capabilities)
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
            elif not password_ok(self.maildrops.mailboxes.get(self.user), arg):
                self.user, self.user_given = "", False
                self._reply(AUTH_FAILED)
            else:
                self._login(self.user)
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
        refusal = None
        if self.authenticated:
            refusal = "-ERR Already logged in"
        elif mechanism not in self.mechanisms:
            refusal = "-ERR Unsupported authentication mechanism"
        elif initial and mechanism in OAUTH_MECHANISMS and self.options.oauth_two_step_only:
            # Like Microsoft 365: the token must come after the "+" (two-step form).
            refusal = "-ERR Initial response not supported for this mechanism"
        if refusal is not None:
            self.server._record(self.user, line_for_log("AUTH", mechanism, redact=bool(initial)))
            self._reply(refusal)
            return
        outcome = authenticate(
            mechanism, initial or None, self._challenge, self.maildrops.mailboxes
        )
        self.server._record(outcome.user, outcome.log_line)
        if outcome.error is not None:
            self._reply(outcome.error)
            return
        self.user = outcome.user
        self._login(outcome.user)

    def _challenge(self, data: str) -> str:
        """One SASL round trip (RFC 5034 §4): send ``+ data``, return the client's line."""
        self._reply(f"+ {data}")
        try:
            line = self._read_line(MAX_SASL_LINE).decode("utf-8", "surrogateescape")
        except LineTooLong:
            return ""  # fails to decode, so the exchange fails
        if line == "*":
            raise SaslCancelled
        return line

    def _apop(self, arg: str) -> None:
        name, _, digest = arg.partition(" ")
        self.server._record(name, line_for_log("APOP", name, redact=bool(digest)))
        if not self.options.apop:
            self._reply("-ERR Unknown command")
        elif self.authenticated:
            self._reply("-ERR Already logged in")
        elif not apop_ok(self.maildrops.mailboxes.get(name), self.timestamp, digest):
            self._reply(AUTH_FAILED)
        else:
            self.user = name
            self._login(name)

    def _login(self, user: str) -> None:
        """After correct credentials: scripted refusals, limits, then the maildrop lock."""
        refusal = self.maildrops.admit(user)
        if refusal is not None:
            self._reply(refusal)
            return
        self.admitted = user
        try:
            maildrop = self.maildrops.checkout(user)
        except (ValueError, TypeError) as exc:
            self._release(update=False)
            self._reply(f"-ERR [SYS/PERM] Maildrop is inconsistent: {exc}")
            return
        if maildrop is None:
            self._release(update=False)
            self._reply("-ERR [IN-USE] Mailbox is locked")
            return
        self.maildrop = maildrop
        self.authenticated = True
        count, size = self._totals()
        self._reply(f"+OK Logged in, maildrop has {count} messages ({size} octets)")

    def _quit(self) -> None:
        self.closing = True
        partial = self.options.quit_partial
        if not self.authenticated:
            self._reply("+OK Bye")
        elif self.options.fault in QUIT_FAULTS:
            self._release(update=self.options.fault == "drop_after_update")
            raise FaultDisconnect(f"{self.options.fault}: connection dropped at QUIT")
        elif self.options.quit_error:
            self._release(update=False)
            self._reply("-ERR Some deleted messages not removed")
        elif self.options.quit_drop:
            self._release(update=True)
            raise SessionDisconnect("QUIT answered by closing the connection")
        elif partial is not None:
            left = self._release(update=True, limit=partial)
            self._reply(f"-ERR [SYS/TEMP] Some deleted messages not removed ({left} left)")
        else:
            # Delete and unlock before answering, so a client that reconnects at once finds
            # the maildrop updated and free (RFC 1939 §6, UPDATE state).
            left = self._release(update=True)
            self._reply(f"+OK Logging out ({left} messages left)")

    def _release(self, *, update: bool, limit: int | None = None) -> int:
        """Leave the maildrop; with ``update``, enter the UPDATE state first (RFC 1939 §6)."""
        left = 0
        if self.authenticated:
            self.authenticated = False
            deleted, retrieved = set(self.deleted), set(self.retrieved)
            if self.options.expire == "0":
                deleted |= retrieved  # RFC 2449 §6.7: EXPIRE 0 deletes what was retrieved
            if not update:
                deleted, retrieved = set(), set()
            left = self.maildrops.checkin(self.user, self.maildrop, deleted, retrieved, limit)
        if self.admitted is not None:
            self.maildrops.dismiss(self.admitted)
            self.admitted = None
        return left

    def _totals(self) -> tuple[int, int]:
        live = [m for i, m in enumerate(self.maildrop.messages) if i not in self.deleted]
        return len(live), sum(len(m) for m in live)

    def _number(self, arg: str, verb: str) -> int | None:
        """The 0-based index of a live message, or None after answering -ERR."""
        if not NUMBER_RE.fullmatch(arg):
            self._reply(f"-ERR Syntax: {verb} <message number>")
            return None
        number = int(arg)
        if not 1 <= number <= len(self.maildrop.messages):
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
        delta = self.options.list_size_delta
        self._listing(arg, "LIST", lambda i: str(len(self.maildrop.messages[i]) + delta))

    def _uidl(self, arg: str) -> None:
        if "UIDL" not in self.caps:
            self._reply("-ERR Unknown command")
        elif self.options.fault == "oversized_listing_line":
            self._listing(arg, "UIDL", lambda i: oversized_listing_value(i + 1))
        else:
            self._listing(arg, "UIDL", lambda i: uidl_on_wire(self.maildrop.uidls[i]))

    def _listing(self, arg: str, verb: str, value: Callable[[int], str]) -> None:
        if arg:
            index = self._number(arg, verb)
            if index is not None:
                self._reply(f"+OK {index + 1} {value(index)}")
            return
        count, size = self._totals()
        numbers = range(len(self.maildrop.messages))
        lines = [f"{i + 1} {value(i)}" for i in numbers if i not in self.deleted]
        self._multiline(f"+OK {count} messages ({size} octets)", lines)

    def _retr(self, arg: str) -> None:
        index = self._number(arg, "RETR")
        if index is None:
            return
        message = self.maildrop.messages[index]
        if self.options.fault in RETR_FAULTS:
            faulty_retr(self, self.options.fault, message)
            return
        status = f"+OK {len(message)} octets\r\n".encode()
        body = dot_stuff(message)
        limit = self.options.drop_after_bytes
        if limit is not None and self.retr_bytes + len(body) >= limit:
            self.send(status + body[: max(0, limit - self.retr_bytes)], multiline=True)
            raise SessionDisconnect(f"drop_after_bytes={limit} reached in RETR {index + 1}")
        self.retr_bytes += len(body)
        self.send(status + body, multiline=True)
        self.retrieved.add(index)

    def _top(self, arg: str) -> None:
        number, _, lines = arg.partition(" ")
        if "TOP" not in self.caps:
            self._reply("-ERR Unknown command")
        elif not NUMBER_RE.fullmatch(lines):
            self._reply("-ERR Syntax: TOP <message number> <lines>")
        elif (index := self._number(number, "TOP")) is not None:
            part = top_of(self.maildrop.messages[index], int(lines))
            self.send(b"+OK\r\n" + dot_stuff(part), multiline=True)

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

    def send(self, data: bytes, *, multiline: bool = False) -> None:
        trickle = self.options.trickle
        if not multiline or trickle is None:
            # One sendall per response: with TCP_NODELAY that avoids tiny segments per line.
            self.sock.sendall(data)
            return
        size, pause = trickle
        for start in range(0, len(data), size):
            if start and self.server._stop_event.wait(pause):
                raise SessionDisconnect("server stopping during a trickled response")
            self.sock.sendall(data[start : start + size])

    def _close(self) -> None:
        self.server._unregister(self)
        if self.reader is not None:
            self.reader.close()
        try:
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
            self.sock.settimeout(CLOSE_DRAIN_SECONDS)
            deadline = time.monotonic() + CLOSE_DRAIN_SECONDS
            while time.monotonic() < deadline and socket.socket.recv(self.sock, 65536):
                pass
        except OSError:
            pass
        finally:
            self.sock.close()
