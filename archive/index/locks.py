"""Cross-process coordination through PostgreSQL advisory locks.

Every process and machine that archives into one database sees the same locks, so the two
limits below hold across Prefect workers, not just inside one process:

- one POP3 session per mailbox at a time (servers lock the maildrop anyway and answer a second
  session with ``-ERR [IN-USE]``; we don't even try);
- at most ``max_connections`` sessions per POP3 host (Dovecot answers ``[IN-USE]`` past its
  per-user+IP limit, providers throttle or ban).

Session-level advisory locks belong to the database connection: they survive the per-message
transactions of a mailbox run, are released explicitly when it ends, and by PostgreSQL if the
process dies, so a crashed worker never leaves a mailbox locked.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Connection, text

from archive.errors import Pop3TemporaryError

log = logging.getLogger(__name__)

# The one-bigint and two-int4 forms of advisory locks never collide (PostgreSQL keys them
# apart), so mailbox locks use the 64-bit form and host slots the (host, slot) form.
_MAILBOX_NAMESPACE = "mailarchive:mailbox:"
_HOST_NAMESPACE = "mailarchive:host:"
# gc against every process that writes objects: writers hold this lock shared while they
# store objects and record the rows that reference them; gc holds it exclusive.
_STORE_WRITERS = "mailarchive:store-writers"
_POLL_SECONDS = (0.05, 0.25)


def _key(namespace: str, name: str, bits: int) -> int:
    digest = hashlib.sha256((namespace + name).encode("utf-8")).digest()
    return int.from_bytes(digest[: bits // 8], "big", signed=True)


def mailbox_key(name: str) -> int:
    return _key(_MAILBOX_NAMESPACE, name, 64)


def host_key(host: str) -> int:
    return _key(_HOST_NAMESPACE, host.lower(), 32)


def _try(conn: Connection, sql: str, **params: int) -> bool:
    with conn.begin():
        return bool(conn.execute(text(sql), params).scalar_one())


def _unlock(conn: Connection, sql: str, **params: int) -> None:
    if conn.invalidated:
        # The session died (DatabaseUnavailable), and PostgreSQL released its locks with it;
        # unlocking would open a new session only to find nothing to release.
        return
    with conn.begin():
        conn.execute(text(sql), params)


@contextmanager
def _released(conn: Connection, sql: str, **params: int) -> Iterator[None]:
    """Run `sql` (an unlock) on the way out.

    After an error, a failed unlock must not replace that error: the work ended because of
    it, and it is what the mailbox's result reports (the database may have restarted while
    a POP3 session ran, so the unlock fails too). The connection is then invalidated, so
    that its session, and every advisory lock it held, ends instead of going back to the
    pool still holding them.
    """
    try:
        yield
    except BaseException:
        try:
            _unlock(conn, sql, **params)
        except Exception as cleanup:
            log.warning("releasing an advisory lock failed after an error: %s", cleanup)
            conn.invalidate()
        raise
    _unlock(conn, sql, **params)


@contextmanager
def _try_exclusive(conn: Connection, key: int) -> Iterator[bool]:
    """Yields whether this connection got the 64-bit advisory lock `key`, without waiting."""
    held = _try(conn, "SELECT pg_try_advisory_lock(CAST(:key AS bigint))", key=key)
    if not held:
        yield False
        return
    with _released(conn, "SELECT pg_advisory_unlock(CAST(:key AS bigint))", key=key):
        yield True


def mailbox_lock(conn: Connection, name: str) -> AbstractContextManager[bool]:
    """Yields True while this connection holds the mailbox; False if another session does."""
    return _try_exclusive(conn, mailbox_key(name))


@contextmanager
def host_slot(conn: Connection, host: str, capacity: int, wait_seconds: float) -> Iterator[int]:
    """Hold one of `capacity` connection slots for `host`, waiting up to `wait_seconds`.

    A counting semaphore out of `capacity` advisory locks: try each slot, sleep with jitter
    when all are taken. Yields the slot number. Raises a transient error after the wait.
    """
    key = host_key(host)
    deadline = time.monotonic() + wait_seconds
    slots = list(range(capacity))
    while True:
        random.shuffle(slots)
        for slot in slots:
            if _try(
                conn,
                "SELECT pg_try_advisory_lock(CAST(:key AS integer), CAST(:slot AS integer))",
                key=key,
                slot=slot,
            ):
                with _released(
                    conn,
                    "SELECT pg_advisory_unlock(CAST(:key AS integer), CAST(:slot AS integer))",
                    key=key,
                    slot=slot,
                ):
                    yield slot
                return
        if time.monotonic() >= deadline:
            raise Pop3TemporaryError(
                f"host {host}: all {capacity} connection slots stayed busy for "
                f"{wait_seconds:g}s (max_connections)"
            )
        log.debug("host %s: all %d connection slots busy, waiting", host, capacity)
        time.sleep(random.uniform(*_POLL_SECONDS))


def store_writers_key() -> int:
    return _key(_STORE_WRITERS, "", 64)


@contextmanager
def store_writer(conn: Connection) -> Iterator[None]:
    """Held (shared) by every run that stores objects and then records rows for them, so gc,
    which needs it exclusive, never removes an object such a run is about to reference."""
    key = store_writers_key()
    with conn.begin():
        conn.execute(text("SELECT pg_advisory_lock_shared(CAST(:key AS bigint))"), {"key": key})
    with _released(conn, "SELECT pg_advisory_unlock_shared(CAST(:key AS bigint))", key=key):
        yield


def store_collector(conn: Connection) -> AbstractContextManager[bool]:
    """Yields True while this connection is the only one touching the store (gc may delete);
    False while any writer holds `store_writer`."""
    return _try_exclusive(conn, store_writers_key())
