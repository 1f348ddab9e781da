"""Broken RETR, UIDL and QUIT answers of the fake POP3 server (``FakeServerOptions.fault``).

Each shows what no well-behaved server such as Dovecot will do, so that a client's defences
can be tested: RFC 1939 §3 limits a status line to 512 octets, and RFC 2449 §4 keeps that,
but a client must not trust it; a body may never end or stall half-way.

Private to `archive.pop3.fake.server`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from archive.pop3.fake.wire import dot_stuff

if TYPE_CHECKING:
    from archive.pop3.fake.session import Session

QUIT_FAULTS: Final = frozenset({"drop_before_quit", "drop_after_update"})
"""``drop_before_quit``: the connection drops when QUIT comes, before the server reads it, so
there is no UPDATE and no reply (RFC 1939 §6: nothing marked is deleted).
``drop_after_update``: the server enters UPDATE, deletes what was marked, then the connection
drops before the +OK: the client cannot know that its deletions happened."""
RETR_FAULTS: Final = frozenset({"garbage_status", "oversized_status", "endless_retr", "stall_retr"})
FAULTS: Final = RETR_FAULTS | QUIT_FAULTS | {"oversized_listing_line"}
# Length of an oversized status or listing line, CRLF included.
OVERSIZED_LINE: Final = 10_000
# Not a status line: no "+OK" or "-ERR" (RFC 1939 §3).
GARBAGE_STATUS: Final = b"OK here comes your message"
_ENDLESS_BATCH: Final = b"".join(
    b"endless body line %05d of a message that never ends\r\n" % n for n in range(200)
)


class FaultDisconnect(Exception):
    """The fault ends the session without UPDATE."""


def faulty_retr(session: Session, fault: str, message: bytes) -> None:
    """Answer RETR of ``message`` as ``fault`` says (one of `RETR_FAULTS`)."""
    body = dot_stuff(message)
    if fault == "garbage_status":
        # The body follows, as from a server whose status line went wrong.
        session.send(GARBAGE_STATUS + b"\r\n" + body, multiline=True)
    elif fault == "oversized_status":
        head = f"+OK {len(message)} octets ".encode()
        status = head + b"x" * (OVERSIZED_LINE - len(head) - 2) + b"\r\n"
        session.send(status + body, multiline=True)
    elif fault == "endless_retr":
        header, _, _ = message.partition(b"\r\n\r\n")
        session.send(f"+OK {len(message)} octets\r\n".encode() + header + b"\r\n\r\n")
        while not session.server._stop_event.is_set():
            # Ends when the client goes (the send fails) or stop() cuts the socket.
            session.send(_ENDLESS_BATCH)
        raise FaultDisconnect("server stopping during endless RETR")
    elif fault == "stall_retr":
        status = f"+OK {len(message)} octets\r\n".encode()
        session.send(status + body[: len(body) // 2])
        session.wait_for_close()
        raise FaultDisconnect("client closed during a stalled RETR")
    else:
        raise ValueError(f"not a RETR fault: {fault!r}")


def oversized_listing_value(number: int) -> str:
    """A UIDL listing value making the line ``{number} {value}`` CRLF 10,000 octets long."""
    return "x" * (OVERSIZED_LINE - len(str(number)) - 3)
