"""One connection of the fake POP3 server: the AUTHORIZATION, TRANSACTION and UPDATE states.

RFC 1939 §3-§7, with CAPA (RFC 2449) and AUTH (RFC 5034). Private to
`archive.pop3.fakeserver`, whose docstring describes the behaviour.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, BinaryIO

from archive.pop3._fake_auth import decode_plain
from archive.pop3._fake_wire import (
    AUTH_FAILED,
    CLOSE_DRAIN_SECONDS,
    LOGIN_ERROR_TEXT,
    MAX_COMMAND_LINE,
    MAX_DISCARD,
    MAX_SASL_LINE,
    NUMBER_RE,
    dot_stuff,
    line_for_log,
    top_of,
)

if TYPE_CHECKING:
    from archive.pop3.fakeserver import FakePop3Server

log = logging.getLogger("archive.pop3.fakeserver")


class _LineTooLong(Exception):
    pass


class _Disconnect(Exception):
    """End the session without the UPDATE state: EOF, a drop, or an abusive client."""


class Session:
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
        self.server._record(self.user, "PASS ***" if verb == "PASS" else line_for_log(verb, arg))
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
            self.server._record(self.user, line_for_log("AUTH", mechanism, redact=bool(initial)))
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
        credentials = None if response == "=" else decode_plain(response)
        self.server._record(credentials[0] if credentials else "", "AUTH PLAIN ***")
        if credentials is None:
            self._reply(AUTH_FAILED)
            return
        self.user = credentials[0]
        self._login(*credentials)

    def _login(self, user: str, password: str) -> None:
        box = self.server._mailboxes.get(user)
        secret = password.encode("utf-8", "surrogateescape")
        if box is None or not hmac.compare_digest(secret, box.password.encode()):
            self.user, self.user_given = "", False
            self._reply(AUTH_FAILED)
            return
        code = self.options.login_error_code
        if code is not None:
            self._reply(f"-ERR [{code}] {LOGIN_ERROR_TEXT.get(code, 'Login refused')}")
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
        if not NUMBER_RE.fullmatch(arg):
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
        body = dot_stuff(message)
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
        elif not NUMBER_RE.fullmatch(lines):
            self._reply("-ERR Syntax: TOP <message number> <lines>")
        elif (index := self._number(number, "TOP")) is not None:
            self._send(b"+OK\r\n" + dot_stuff(top_of(self.snapshot[index], int(lines))))

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
            if not line or skipped > MAX_DISCARD:
                raise _Disconnect("overlong line")
        raise _LineTooLong

    def _reply(self, line: str) -> None:
        self._send(line.encode("utf-8", "surrogateescape") + b"\r\n")

    def _multiline(self, status: str, lines: Iterable[str]) -> None:
        body = "".join(f"{line}\r\n" for line in lines).encode("utf-8")
        self._send(status.encode("utf-8") + b"\r\n" + dot_stuff(body))

    def _send(self, data: bytes) -> None:
        # One sendall per response: with TCP_NODELAY that avoids tiny segments per line.
        self.sock.sendall(data)

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
