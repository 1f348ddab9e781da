"""Through the real flow and a real Prefect server: database outages are retried with backoff,
a long-lived process survives a restart, a database down at start is one clear line; and no
secret reaches a log, a parameter, an artifact, the database, the CLI's output or an error.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sqlalchemy import Engine

from archive.index.database import make_engine
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.support.mail import make_message, scalar
from tests.support.moto import moto_server
from tests.support.stoppable_postgres import StoppablePostgres

pytestmark = pytest.mark.prefect
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def pg() -> Iterator[StoppablePostgres]:
    server = StoppablePostgres()
    yield server
    server.close()


_databases = iter(range(1000))


@pytest.fixture
def flow_env(prefect_server, pg: StoppablePostgres, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """The archive on the stoppable server (URL with a password), objects under tmp_path;
    yields the database URL."""
    from archive.pipeline import build

    n = next(_databases)
    url = pg.archive_database(f"flow_{n}", f"flow_user_{n}", f"Db-pw-{n}-q8Zr")
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", (tmp_path / "objects").as_uri())
    monkeypatch.setenv("MAILARCHIVE_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("MAILARCHIVE_RETRIES", "2")
    yield url
    build.reset()


@pytest.fixture
def engine(flow_env: str) -> Iterator[Engine]:
    engine = make_engine(flow_env, pool_size=2)
    yield engine
    engine.dispose()


def _config(path: Path, server: FakePop3Server, names: list[str], monkeypatch, **extra) -> Path:
    tables = []
    for name in names:
        monkeypatch.setenv(f"OUTAGE_PW_{name.upper()}", "secret")
        tables.append(
            f'[[mailbox]]\nname = "{name}"\nhost = "{server.host}"\nport = {server.port}\n'
            f'tls = "none"\nusername = "{name}"\npassword_env = "OUTAGE_PW_{name.upper()}"\n'
            + "".join(f"{key} = {json.dumps(value)}\n" for key, value in extra.items())
        )
    path.write_text("\n".join(tables))
    return path


def _attempt_times(monkeypatch) -> list[float]:
    """When each task attempt started: flows/ builds (or reuses) its archiver per attempt."""
    import flows.archive_flow as archive_flow

    times: list[float] = []
    real = archive_flow.get_archiver

    def recording(settings):
        times.append(time.monotonic())
        return real(settings)

    monkeypatch.setattr(archive_flow, "get_archiver", recording)
    return times


def _stop_database_after_first_message(monkeypatch, action) -> list[bool]:
    import flows.archive_flow as archive_flow

    done: list[bool] = []
    real_report = archive_flow._report

    def report_then_act(box, result):
        real_report(box, result)
        if result.archived >= 1 and not done:
            done.append(True)
            action()

    monkeypatch.setattr(archive_flow, "_report", report_then_act)
    return done


def test_restart_mid_run_is_retried_and_both_mailboxes_succeed(
    flow_env: str, pg: StoppablePostgres, engine: Engine, tmp_path: Path, monkeypatch
):
    from flows.archive_flow import run_archive

    # The restart takes ~0.3 s: a retry at once could find the server still starting.
    monkeypatch.setenv("MAILARCHIVE_RETRY_DELAY_SECONDS", "1")
    restarted = _stop_database_after_first_message(monkeypatch, pg.restart)
    boxes = {n: FakeMailbox("secret", [make_message(f"{n} {i}") for i in range(4)]) for n in "ab"}
    with FakePop3Server(boxes) as server:
        config = _config(tmp_path / "boxes.toml", server, ["a", "b"], monkeypatch)
        ok, results = run_archive(config, None)
        deles = [c for _, c in server.commands if c.startswith("DELE")]
    assert restarted
    assert ok, results
    assert [(r["name"], r["error"]) for r in results] == [("a", None), ("b", None)]
    assert deles == []
    assert scalar(engine, "SELECT count(*) FROM mailarchive.delivery") == 8
    assert scalar(engine, "SELECT count(*) FROM mailarchive.message") == 8


def test_database_down_20s_mid_run_is_retried_with_backoff_then_succeeds(
    flow_env: str, pg: StoppablePostgres, engine: Engine, tmp_path: Path, monkeypatch
):
    """The default three retries, with delays lowered from 10 s to 5 s (5, 10, 20 s, jittered):
    the attempts during the outage fail fast, a later one archives everything."""
    from flows.archive_flow import run_archive

    monkeypatch.delenv("MAILARCHIVE_RETRIES")  # the default
    monkeypatch.setenv("MAILARCHIVE_RETRY_DELAY_SECONDS", "5")
    outage: list[threading.Thread] = []
    _stop_database_after_first_message(monkeypatch, lambda: outage.append(pg.down_for(20)))
    attempts = _attempt_times(monkeypatch)
    messages = [make_message(f"outage {i}") for i in range(5)]
    with FakePop3Server({"long": FakeMailbox("secret", list(messages))}) as server:
        config = _config(
            tmp_path / "boxes.toml", server, ["long"], monkeypatch, delete_after_archive=True
        )
        ok, results = run_archive(config, None)
        left = server.mailbox("long").messages
    outage[0].join(60)
    assert ok, results
    # Counts add up over the attempts: the one that met the outage archived one message.
    assert (results[0]["archived"], results[0]["deleted"], results[0]["error"]) == (5, 5, None)
    assert results[0]["attempts"] == len(attempts)
    assert left == []
    # Retried: one attempt that met the outage, at least one during it, one after it; the
    # waits grew (exponential backoff), and the last attempt began after the database was back.
    assert len(attempts) >= 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert attempts[-1] - attempts[0] >= 20
    assert gaps[-1] > gaps[0]
    assert scalar(engine, "SELECT count(*) FROM mailarchive.delivery") == 5


def test_long_lived_process_runs_again_after_a_restart(
    flow_env: str, pg: StoppablePostgres, engine: Engine, tmp_path: Path, monkeypatch
):
    """Two flow runs in one process, as under `serve` or a worker, with no retries: the
    second, after a restart, must not trip over the pooled connections of the first."""
    from flows.archive_flow import run_archive

    monkeypatch.setenv("MAILARCHIVE_RETRIES", "0")
    boxes = {n: FakeMailbox("secret", [make_message(f"{n} one")]) for n in ("p", "q")}
    with FakePop3Server(boxes) as server:
        config = _config(tmp_path / "boxes.toml", server, list(boxes), monkeypatch)
        first_ok, _ = run_archive(config, None)
        pg.restart()
        for name, box in boxes.items():
            box.messages.append(make_message(f"{name} two"))
        second_ok, second = run_archive(config, None)
    assert first_ok
    assert second_ok, second
    assert [(r["archived"], r["error"]) for r in second] == [(1, None), (1, None)]


def test_cli_with_the_database_down_at_start(
    flow_env: str, pg: StoppablePostgres, tmp_path: Path, monkeypatch
):
    """Retried (once here), then each mailbox fails in one line naming the database host
    and port, never the password; exit code 1 (documented in `mailarchive run --help`)."""
    from prefect.settings import PREFECT_API_URL

    password = flow_env.split(":")[2].split("@")[0]
    with FakePop3Server({"m1": FakeMailbox("secret", [make_message()])}) as server:
        config = _config(tmp_path / "boxes.toml", server, ["m1"], monkeypatch)
        pg.stop()
        try:
            done = subprocess.run(
                [BIN / "mailarchive", "run", "--config", str(config)],
                env={
                    **os.environ,
                    "MAILARCHIVE_RETRIES": "1",
                    "PREFECT_API_URL": PREFECT_API_URL.value(),
                    "COLUMNS": "300",
                },
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            pg.start()
        sent = list(server.commands)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert password not in output
    expected = (
        "database unavailable (cannot connect): connection failed: connection to server at "
        f'"127.0.0.1", port {pg.port} failed: Connection refused'
    )
    assert expected in output, output
    assert sent == []


# Secrets: each is unique, so finding it anywhere is a leak.
POP_PASSWORD = "Pop-Env-Pw-3f9a1c"
OAUTH_TOKEN = "ya29.Token-7d2b44e0-secret"
WRONG_TOKEN = "ya29.Wrong-Token-91ac03"
BLOCK_PASSWORD = "Block-Pw-c55e02"
WRONG_PASSWORD = "Wrong-Pw-e81d77"
DB_PASSWORD = "Db-Role-Pw-0b6f3e"
AWS_SECRET = "Aws-Secret-Key-4a1f9d8e7c"
AWS_KEY_ID = "AKIATESTKEYID4LEAKS"


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


class _Everything:
    """Every record of every logger, at DEBUG, rendered as a handler would render it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.formatter = logging.Formatter()

    def record(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += self.formatter.formatException(record.exc_info)
        self.texts.append(text)


@pytest.fixture
def all_logs(monkeypatch) -> Iterator[_Everything]:
    """Hooks `Logger.handle`, which every record passes whatever its handlers and however
    Prefect configures them, and sets every logger to DEBUG for the test."""
    everything = _Everything()
    real_handle = logging.Logger.handle

    def handle(self: logging.Logger, record: logging.LogRecord) -> None:
        everything.record(record)
        real_handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", handle)
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield everything
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture
def secrets_db(pg: StoppablePostgres) -> str:
    """The archive database, owned by a role with a password; made before `all_logs` starts
    listening, since CREATE ROLE … PASSWORD is the test's own statement, not the product's."""
    return pg.archive_database("secrets", "archivist", DB_PASSWORD)


def test_no_secret_leaks_anywhere(
    prefect_server, pg, moto: str, secrets_db: str, tmp_path: Path, monkeypatch, all_logs
):
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL

    from archive.pipeline import build
    from flows.archive_flow import archive_mailboxes

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", secrets_db)
    bucket = "secrets-bucket"
    aws = {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto,
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    boto3.session.Session().client("s3", endpoint_url=moto).create_bucket(Bucket=bucket)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", f"s3://{bucket}")
    monkeypatch.setenv("MAILARCHIVE_RETRIES", "0")
    monkeypatch.setenv("SECRETS_POP_PW", POP_PASSWORD)
    monkeypatch.setenv("SECRETS_WRONG_PW", WRONG_PASSWORD)
    Secret(value=BLOCK_PASSWORD).save("secrets-test-block", overwrite=True)
    token_file, wrong_token_file = tmp_path / "token", tmp_path / "wrong-token"
    token_file.write_text(OAUTH_TOKEN + "\n")
    wrong_token_file.write_text(WRONG_TOKEN + "\n")

    boxes = {
        "envbox": FakeMailbox(POP_PASSWORD, [make_message("env")]),
        "tokenbox": FakeMailbox("unused", [make_message("token")], oauth_token=OAUTH_TOKEN),
        "blockbox": FakeMailbox(BLOCK_PASSWORD, [make_message("block")]),
        "wrongbox": FakeMailbox("the-right-one", [make_message("wrong")]),
        "badtoken": FakeMailbox("unused", [make_message("bad")], oauth_token="other"),
    }
    options = FakeServerOptions(
        capabilities=("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "SASL PLAIN XOAUTH2")
    )
    with FakePop3Server(boxes, options=options) as server:
        here = f'host = "{server.host}"\nport = {server.port}\n'
        config = tmp_path / "secrets.toml"
        config.write_text(
            f'[[mailbox]]\nname = "envbox"\n{here}tls = "none"\nusername = "envbox"\n'
            'auth = "user"\npassword_env = "SECRETS_POP_PW"\n\n'
            f'[[mailbox]]\nname = "tokenbox"\n{here}tls = "none"\nusername = "tokenbox"\n'
            f'auth = "xoauth2"\npassword_command = ["/bin/cat", "{token_file}"]\n\n'
            f'[[mailbox]]\nname = "blockbox"\n{here}tls = "none"\nusername = "blockbox"\n'
            'auth = "plain"\npassword_secret = "secrets-test-block"\n\n'
            f'[[mailbox]]\nname = "wrongbox"\n{here}tls = "none"\nusername = "wrongbox"\n'
            'password_env = "SECRETS_WRONG_PW"\n\n'
            f'[[mailbox]]\nname = "badtoken"\n{here}tls = "none"\nusername = "badtoken"\n'
            f'auth = "xoauth2"\npassword_command = ["/bin/cat", "{wrong_token_file}"]\n\n'
            f'[[mailbox]]\nname = "nohost"\nhost = "127.0.0.1"\nport = {_closed_port()}\n'
            'tls = "none"\nusername = "x"\npassword_env = "SECRETS_POP_PW"\n\n'
            f'[[mailbox]]\nname = "badtls"\n{here}tls = "implicit"\nusername = "envbox"\n'
            'password_env = "SECRETS_POP_PW"\n'
        )
        try:
            state = archive_mailboxes(config_path=str(config), return_state=True)
        finally:
            build.reset()
        cli = subprocess.run(
            [BIN / "mailarchive", "run", "--config", str(config), "--json"],
            env={
                **os.environ,
                "PREFECT_API_URL": PREFECT_API_URL.value(),
                "PREFECT_LOGGING_LEVEL": "DEBUG",
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        wire = [command for _, command in server.commands]

    # The run did what it should: three mailboxes archived, four failed, each in words.
    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    by_name = {r["name"]: r for r in failure.results}
    assert {n for n, r in by_name.items() if r["error"] is None} == {
        "envbox",
        "tokenbox",
        "blockbox",
    }
    assert "AUTH" in by_name["wrongbox"]["error"] or "auth" in by_name["wrongbox"]["error"]
    assert by_name["nohost"]["error"] and by_name["badtls"]["error"]
    assert cli.returncode == 1, cli.stderr[-3000:]
    cli_results = {
        m["name"]: m for m in json.loads(cli.stdout.strip().splitlines()[-1])["mailboxes"]
    }
    assert cli_results["envbox"]["error"] is None and cli_results["envbox"]["new"] == 0
    # The secrets really were used: PLAIN and XOAUTH2 went over the wire (redacted in the log).
    assert any(c.startswith("AUTH PLAIN") for c in wire) and any("XOAUTH2" in c for c in wire)

    # Where a wrong database password ends up: the error text.
    wrong_db = make_engine(pg.url("secrets", "archivist", "Db-Wrong-Pw-77aa"), pool_size=1)
    with pytest.raises(Exception) as db_refused:
        wrong_db.connect()
    wrong_db.dispose()

    APILogHandler().flush()
    flow_run_id = state.state_details.flow_run_id

    async def api_record() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            task_runs = await client.read_task_runs()
            logs = await client.read_logs()
            artifacts = await client.read_artifacts()
            mine = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            own_artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            own_tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            assert mine and own_artifacts and len(own_tasks) == 7
            return [
                *(run.model_dump_json() for run in runs),
                *(run.model_dump_json() for run in task_runs),
                *(log.model_dump_json() for log in logs),
                *(artifact.model_dump_json() for artifact in artifacts),
            ]

    api = asyncio.run(api_record())
    dump = pg.dump("secrets")
    assert "envbox" in dump and "blockbox" in dump  # the dump has the run's rows
    errors = [str(failure), str(db_refused.value), *(str(r["error"]) for r in failure.results)]
    places = {
        "logs": all_logs.texts,
        "prefect api": api,
        "pg_dump": [dump],
        "cli stdout": [cli.stdout],
        "cli stderr": [cli.stderr],
        "errors": errors,
    }
    secrets = [
        POP_PASSWORD, OAUTH_TOKEN, WRONG_TOKEN, BLOCK_PASSWORD, WRONG_PASSWORD, DB_PASSWORD,
        "Db-Wrong-Pw-77aa", AWS_SECRET,
        base64.b64encode(f"\0blockbox\0{BLOCK_PASSWORD}".encode()).decode(),
        base64.b64encode(f"user=tokenbox\x01auth=Bearer {OAUTH_TOKEN}\x01\x01".encode()).decode(),
    ]  # fmt: skip
    assert len(all_logs.texts) > 100  # DEBUG really was on
    leaks = [
        (place, secret, text[max(0, text.find(secret) - 200) : text.find(secret) + 50])
        for place, texts in places.items()
        for text in texts
        for secret in secrets
        if secret in text
    ]
    assert leaks == []
    # The AWS access key ID is an identifier, not a secret: botocore's DEBUG log of the signed
    # headers shows it (docs/SECURITY.md says so); nothing else does.
    key_id_places = sorted(
        {
            place if place != "logs" else text.split(":", 1)[0].split(".")[0]
            for place, texts in places.items()
            for text in texts
            if AWS_KEY_ID in text
        }
    )
    assert key_id_places == ["botocore"]
