"""`mailarchive server` and the CLI's Prefect checks, without starting a Prefect server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from archive.app.prefect_server import (
    api_unreachable,
    asyncpg_url,
    ensure_prefect_database,
    plan_server,
)
from archive.config import Settings
from archive.errors import ConfigError

BIN = Path(sys.executable).parent


def test_prefect_gets_its_own_database_beside_the_archive(fresh_db_url: str, monkeypatch):
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.delenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere:4200/api")
    plan = plan_server(Settings(), "0.0.0.0", 4321, None)
    url = make_url(plan.env["PREFECT_SERVER_DATABASE_CONNECTION_URL"])
    archive = make_url(fresh_db_url)
    assert (url.drivername, url.database) == ("postgresql+asyncpg", "prefect")
    assert (url.host, url.port, url.query) == (archive.host, archive.port, archive.query)
    engine = create_engine(archive.set(drivername="postgresql+psycopg", database="prefect"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar_one() == "prefect"
    engine.dispose()
    assert plan.argv[1:] == [
        "-m",
        "prefect",
        "--no-prompt",  # never stops to ask, never writes a profile
        "server",
        "start",
        "--host",
        "0.0.0.0",
        "--port",
        "4321",
    ]
    assert (plan.ui_url, plan.api_url) == ("http://127.0.0.1:4321", "http://127.0.0.1:4321/api")
    assert "PREFECT_API_URL" not in plan.env
    assert plan.env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4321/api"
    # Idempotent: the second start finds the database.
    assert make_url(ensure_prefect_database(fresh_db_url)).database == "prefect"


def test_explicit_prefect_database_and_bad_ones():
    plan = plan_server(Settings(), "127.0.0.1", 4200, "postgresql://u:pw@db:5432/pf")
    assert plan.env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == (
        "postgresql+asyncpg://u:pw@db:5432/pf"
    )
    assert "pw" not in plan.database
    with pytest.raises(ConfigError, match="must be PostgreSQL"):
        asyncpg_url("sqlite:///prefect.db")
    with pytest.raises(ConfigError, match="database of its own"):
        ensure_prefect_database("postgresql://u@h/prefect")


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_run_and_serve_say_so_when_the_prefect_server_is_down(tmp_path: Path):
    port = _closed_port()
    assert api_unreachable(f"http://127.0.0.1:{port}/api") is not None
    config = tmp_path / "boxes.toml"
    config.write_text(
        '[[mailbox]]\nname = "a"\nhost = "127.0.0.1"\nport = 1\ntls = "none"\n'
        'username = "a"\npassword_env = "DOWN_PW"\n'
    )
    env = {
        **os.environ,
        "DOWN_PW": "x",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    started = {
        command: subprocess.Popen(
            [BIN / "mailarchive", command, "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in ("run", "serve")
    }
    for command, process in started.items():
        _, stderr = process.communicate()
        assert process.returncode == 3, (command, stderr)
        assert f"127.0.0.1:{port}" in stderr and "not reachable" in stderr
    # A missing password is found before Prefect is even asked.
    env.pop("DOWN_PW")
    done = subprocess.run(
        [BIN / "mailarchive", "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "environment variable DOWN_PW is not set" in done.stderr


def test_flows_read_no_settings_at_import_and_keep_their_error_names():
    # A bad setting fails the run that reads it, not every import of the flow module.
    env = {**os.environ, "MAILARCHIVE_MAX_PARALLEL_MAILBOXES": "not-a-number"}
    code = (
        "import flows.archive_flow as a, flows.deployments as d, archive.errors as e\n"
        "assert a.MailboxesFailed is e.MailboxesFailed and d.DispatchFailed is e.DispatchFailed\n"
        "assert issubclass(e.MailboxesFailed, e.RunFailed) and not e.MailboxesFailed.transient\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
