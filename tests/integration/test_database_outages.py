"""A PostgreSQL that really goes away: restarted mid-run, down when a run starts, restarted
between two runs of one long-lived process, restarted between DELE and QUIT.

Each ends in a clear, short, transient failure of that mailbox (which flows/ retries) and a
next attempt that succeeds; never a lost message, a row twice, or a DELE whose QUIT went out
without the ledger knowing. The retries themselves, through Prefect, are in
tests/flows/test_outages_and_secrets.py.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, literal, select, text
from sqlalchemy.exc import DBAPIError

from archive.errors import DatabaseUnavailable, is_transient
from archive.index.database import make_engine
from archive.index.ledger import IndexWriter
from archive.index.models import Delivery
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.client import Pop3Client
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.pop3.source import Endpoint, MailSource
from archive.store import LocalStore, raw_key
from tests.support.mail import fake_box, make_message, scalar
from tests.support.stoppable_postgres import StoppablePostgres

_names = itertools.count()


@pytest.fixture(scope="module")
def pg() -> Iterator[StoppablePostgres]:
    server = StoppablePostgres()
    server.archive_database("template_archive")
    yield server
    server.close()


@pytest.fixture
def db_url(pg: StoppablePostgres) -> str:
    name = f"outage_{next(_names)}"
    pg.execute(f'CREATE DATABASE "{name}" TEMPLATE "template_archive"')
    return pg.url(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


def _archiver(engine: Engine, store: LocalStore, **fields: object) -> Archiver:
    return Archiver(writer=IndexWriter(engine), store=store, default_timeout=10, **fields)  # type: ignore[arg-type]


def _deles(server: FakePop3Server, user: str) -> list[str]:
    return [c for u, c in server.commands if u == user and c.startswith("DELE")]


def _assert_one_short_line(error: str) -> None:
    assert "\n" not in error and len(error) < 400, error
    assert "[SQL" not in error and "sqlalche.me" not in error, error


def _archived_once(engine: Engine, store: LocalStore, messages: list[bytes]) -> None:
    """Every message is in the store, byte-exact, and in the index exactly once."""
    for raw in messages:
        sha = hashlib.sha256(raw).hexdigest()
        assert store.get(raw_key(sha)) == raw
    assert scalar(engine, "SELECT count(*) FROM mailarchive.message") == len(messages)
    assert scalar(engine, "SELECT count(*) FROM mailarchive.delivery") == len(messages)


def test_restart_mid_run_fails_the_mailbox_transiently_and_the_next_attempt_finishes(
    pg: StoppablePostgres, engine: Engine, store: LocalStore, monkeypatch
):
    messages = [make_message(f"restart {i}") for i in range(6)]
    restarted: list[float] = []

    def restart_after_two(result) -> None:
        if result.archived == 2 and not restarted:
            restarted.append(pg.restart())

    archiver = _archiver(engine, store)
    with FakePop3Server({"ann": FakeMailbox("secret", list(messages))}) as server:
        box = fake_box(monkeypatch, server, "ann", delete_after_archive=True)
        with pytest.raises(MailboxFailed) as caught:
            archiver.run(box, progress=restart_after_two)
        after_failure = list(server.mailbox("ann").messages)
        deles_after_failure = _deles(server, "ann")
        retried = archiver.run(box)  # what Prefect's retry does: the same call again
        left = server.mailbox("ann").messages
    assert restarted and restarted[0] < 2.0
    failure = caught.value
    assert failure.transient and is_transient(failure)
    # Group commit (archive.pipeline.batch): the two messages recorded before the restart
    # were in the open batch, rolled back with it, and the third failed on the lost
    # connection: three failed, three never reached; all six stay on the server for the retry.
    result = failure.result
    assert (result.archived, result.failed_messages, result.not_reached) == (0, 3, 3)
    assert failure.result.status == "failed"
    assert failure.result.error is not None and "'ann'" in failure.result.error
    assert "database unavailable" in failure.result.error
    _assert_one_short_line(failure.result.error)
    # The failed session never sent DELE; the server still has every message.
    assert deles_after_failure == [] and after_failure == messages
    # The next attempt, on the same engine, finds a working connection and finishes.
    assert retried.ok, retried.error
    assert (retried.archived, retried.deleted) == (6, 6)
    assert left == []
    _archived_once(engine, store, messages)


def test_database_down_when_the_run_starts_is_one_line_naming_the_host(
    pg: StoppablePostgres, db_url: str, store: LocalStore, monkeypatch
):
    password = "Pw-outage-7c1e"
    pg.execute(f"CREATE ROLE outage_user LOGIN SUPERUSER PASSWORD '{password}'")
    secret_url = pg.url(db_url.rsplit("/", 1)[1], "outage_user", password)
    engine = make_engine(secret_url, pool_size=2)
    archiver = _archiver(engine, store)
    pg.stop()
    try:
        with FakePop3Server({"bea": FakeMailbox("secret", [make_message()])}) as server:
            with pytest.raises(MailboxFailed) as caught:
                archiver.run(fake_box(monkeypatch, server, "bea"))
            sent = list(server.commands)
    finally:
        pg.start()
        engine.dispose()
    error = str(caught.value)
    assert caught.value.transient
    assert caught.value.result.name == "bea"
    assert error.startswith("database unavailable (cannot connect): "), error
    assert f'"127.0.0.1", port {pg.port} failed' in error
    assert password not in error
    _assert_one_short_line(error)
    assert sent == []  # nothing was asked of the POP3 server


def test_a_long_lived_process_survives_a_restart_between_runs(
    pg: StoppablePostgres, engine: Engine, store: LocalStore, monkeypatch
):
    """As `serve` or a worker: one engine for many runs; the pool holds connections that a
    restart has killed, and the next runs (two at once) must not get any of them."""
    boxes = {f"w{i}": FakeMailbox("secret", [make_message(f"w{i} first")]) for i in range(3)}
    archiver = _archiver(engine, store)
    with FakePop3Server(boxes) as server:
        configs = [fake_box(monkeypatch, server, name) for name in boxes]
        first = _in_threads(archiver, configs)
        pooled = engine.pool.checkedin()  # type: ignore[attr-defined]
        pg.restart()
        for name, box in boxes.items():
            box.messages.append(make_message(f"{name} second"))
        second = _in_threads(archiver, configs)
    assert pooled >= 2  # the restart really left dead connections in the pool
    assert all(r.ok for r in first), first
    assert [(r.ok, r.error, r.archived) for r in second] == [(True, None, 1)] * 3
    assert scalar(engine, "SELECT count(*) FROM mailarchive.delivery") == 6


def _in_threads(archiver: Archiver, configs: list) -> list:
    results: list = [None] * len(configs)

    def run(i: int) -> None:
        try:
            results[i] = archiver.run(configs[i])
        except MailboxFailed as failed:
            results[i] = failed.result

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(configs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)  # a hang guard only
    return results


class _RestartAfterDele:
    """The real client; after the server acknowledged the DELEs, PostgreSQL restarts."""

    def __init__(self, pg: StoppablePostgres, source: MailSource) -> None:
        self._pg, self._source = pg, source

    def __getattr__(self, name: str) -> object:
        return getattr(self._source, name)

    def delete(self, numbers: list[int]) -> list[int]:
        acknowledged = self._source.delete(numbers)
        self._pg.restart()
        return acknowledged


def test_restart_between_dele_and_quit_of_300_messages(
    pg: StoppablePostgres, engine: Engine, store: LocalStore, monkeypatch
):
    """Recording 300 DELEs fails: the session is dropped without QUIT, so the server deletes
    nothing; the error is one line, not the UPDATE statement with its 300 bound ids."""
    messages = [make_message(f"bulk {i}", "b") for i in range(300)]
    restarts = [0]

    def connect(endpoint: Endpoint) -> MailSource:
        source = Pop3Client.connect(endpoint)
        restarts[0] += 1
        return _RestartAfterDele(pg, source) if restarts[0] == 1 else source  # type: ignore[return-value]

    archiver = _archiver(engine, store, connect=connect)
    with FakePop3Server({"bulk": FakeMailbox("secret", list(messages))}) as server:
        box = fake_box(monkeypatch, server, "bulk", delete_after_archive=True)
        with pytest.raises(MailboxFailed) as caught:
            archiver.run(box)
        kept = len(server.mailbox("bulk").messages)
        retried = archiver.run(box)
        left = len(server.mailbox("bulk").messages)
        quits = [c for u, c in server.commands if u == "bulk" and c == "QUIT"]
    error = str(caught.value)
    assert caught.value.transient and "database unavailable" in error
    _assert_one_short_line(error)
    assert kept == 300  # DELE without QUIT deletes nothing (RFC 1939 §6)
    assert scalar(engine, "SELECT count(*) FROM mailarchive.delivery") == 300
    # The next run proves each copy again and deletes; one QUIT in all, by the second run.
    assert retried.ok and (retried.archived, retried.deleted) == (0, 300)
    assert left == 0 and len(quits) == 1
    assert (
        scalar(engine, "SELECT count(*) FROM mailarchive.delivery WHERE deleted_at IS NOT NULL")
        == 300
    )
    _archived_once(engine, store, messages)


def test_a_permanent_sql_error_is_short_and_keeps_its_sqlstate(engine: Engine):
    """Not transient, so it stays SQLAlchemy's error (code may read .orig.sqlstate), but its
    text is the cause alone: no statement with its 300 bound ids, no parameters."""
    statement = select(literal(1) / 0).where(Delivery.id.in_(list(range(300))))
    with pytest.raises(DBAPIError) as caught:
        with engine.connect() as conn:
            conn.execute(statement)
    assert not isinstance(caught.value, DatabaseUnavailable)
    assert getattr(caught.value.orig, "sqlstate", None) == "22012"
    assert "division by zero" in str(caught.value)
    _assert_one_short_line(str(caught.value))


def test_counts_after_restart_are_checked_on_a_fresh_connection(engine: Engine, pg):
    """The pool hands out no connection a restart broke, even with no run in between."""
    with engine.connect() as conn:
        before = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    pg.restart()
    with engine.connect() as conn:
        after = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert after != before


def test_the_first_cause_is_reported_not_the_failed_cleanup_after_it(
    pg: StoppablePostgres, engine: Engine, store: LocalStore, monkeypatch
):
    """The database restarts while the POP3 session runs, then the POP3 connection drops.
    Releasing the locks on the dead database connection fails too, afterwards: the mailbox's
    error is the drop, the cause, not the failed unlock."""
    from archive.pop3.fake.server import FakeServerOptions

    messages = [make_message(f"cause {i}", "z" * 50_000) for i in range(3)]
    restarted: list[float] = []

    def restart_after_first(result) -> None:
        if result.archived == 1 and not restarted:
            restarted.append(pg.restart())

    options = FakeServerOptions(drop_after_bytes=70_000)
    archiver = _archiver(engine, store)
    with FakePop3Server(
        {"cause": FakeMailbox("secret", list(messages))}, options=options
    ) as server:
        with pytest.raises(MailboxFailed) as caught:
            archiver.run(fake_box(monkeypatch, server, "cause"), progress=restart_after_first)
    assert restarted
    error = str(caught.value)
    assert caught.value.transient
    assert "database" not in error, error
    assert "'cause'" in error and ("closed" in error or "dropped" in error), error
    _assert_one_short_line(error)
