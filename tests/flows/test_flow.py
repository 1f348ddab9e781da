"""The Prefect flow and the CLI, against one real Prefect server shared by this module."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.support.mail import make_message

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def archive_env(prefect_server, fresh_db_url: str, tmp_path: Path, monkeypatch) -> Path:
    from archive.pipeline import build

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", (tmp_path / "objects").as_uri())
    monkeypatch.setenv("MAILARCHIVE_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("MAILARCHIVE_RETRIES", "2")
    yield tmp_path
    build.reset()


def _write_config(path: Path, server: FakePop3Server, names: list[str], monkeypatch) -> Path:
    tables = []
    for name in names:
        env = f"FLOW_PW_{name.upper()}"
        monkeypatch.setenv(env, "secret")
        tables.append(
            f'[[mailbox]]\nname = "{name}"\nhost = "{server.host}"\nport = {server.port}\n'
            f'tls = "none"\nusername = "{name}"\npassword_env = "{env}"\n'
        )
    path.write_text("\n".join(tables))
    return path


def test_flow_archives_each_mailbox_and_isolates_failures(
    archive_env: Path, fresh_engine: Engine, monkeypatch
):
    from flows.archive_flow import run_archive

    boxes = {
        "alpha": FakeMailbox("secret", [make_message(f"alpha {i}") for i in range(3)]),
        "beta": FakeMailbox("secret", [make_message(f"beta {i}") for i in range(2)]),
        "gamma": FakeMailbox("other-password", [make_message("gamma")]),
    }
    with FakePop3Server(boxes) as server:
        config = _write_config(archive_env / "boxes.toml", server, list(boxes), monkeypatch)
        ok, results = run_archive(config, None)
        logins = [
            (user, c) for user, c in server.commands if c.startswith("PASS") or c.startswith("AUTH")
        ]
    by_name = {r["name"]: r for r in results}
    assert not ok
    assert by_name["alpha"]["archived"] == 3 and by_name["alpha"]["error"] is None
    assert by_name["beta"]["archived"] == 2
    assert "gamma" in by_name["gamma"]["error"]
    # A wrong password is permanent: one attempt, no retry storm.
    assert sum(1 for user, _ in logins if user == "gamma") == 1
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one() == 5


def test_missing_secret_block_fails_before_any_mailbox(archive_env: Path, monkeypatch):
    from prefect.blocks.system import Secret

    from flows.archive_flow import archive_mailboxes

    Secret(value="secret").save("flow-present-secret", overwrite=True)
    with FakePop3Server({"ok": FakeMailbox("secret", [make_message("s")])}) as server:
        config = archive_env / "secrets.toml"
        config.write_text(
            "".join(
                f'[[mailbox]]\nname = "{name}"\nhost = "{server.host}"\nport = {server.port}\n'
                f'tls = "none"\nusername = "ok"\npassword_secret = "{secret}"\n'
                for name, secret in (("present", "flow-present-secret"), ("absent", "no-such"))
            )
        )
        state = archive_mailboxes(config_path=str(config), return_state=True)
        sent = list(server.commands)
    assert state.is_failed()
    with pytest.raises(Exception, match="'absent': Prefect Secret block 'no-such' not found"):
        state.result()
    assert sent == []  # no mailbox ran, not even the one whose secret exists


def test_transient_login_error_is_retried(archive_env: Path, monkeypatch):
    from flows.archive_flow import run_archive

    options = FakeServerOptions(login_error_code="SYS/TEMP")
    with FakePop3Server(
        {"temp": FakeMailbox("secret", [make_message()])}, options=options
    ) as server:
        config = _write_config(archive_env / "boxes.toml", server, ["temp"], monkeypatch)
        ok, results = run_archive(config, None)
        attempts = [c for _, c in server.commands if c.startswith(("PASS", "AUTH"))]
    assert not ok
    assert "SYS/TEMP" in results[0]["error"]
    assert len(attempts) == 3  # first try + MAILARCHIVE_RETRIES=2


def test_dropped_database_connection_is_retried_and_the_mailbox_succeeds(
    archive_env: Path, fresh_db_url: str, fresh_engine: Engine, monkeypatch
):
    import flows.archive_flow as archive_flow
    from tests.support.postgres import terminate_archive_backends

    terminated: list[int] = []
    real_report = archive_flow._report

    def report_then_drop_connection(box, result):
        real_report(box, result)
        if result.archived == 1 and not terminated:
            terminated.append(terminate_archive_backends(fresh_db_url))

    monkeypatch.setattr(archive_flow, "_report", report_then_drop_connection)
    with FakePop3Server(
        {"flaky": FakeMailbox("secret", [make_message(f"flaky {i}") for i in range(3)])}
    ) as server:
        config = _write_config(archive_env / "boxes.toml", server, ["flaky"], monkeypatch)
        ok, results = archive_flow.run_archive(config, None)
        logins = [c for _, c in server.commands if c.startswith(("PASS", "AUTH"))]
    assert terminated and terminated[0] >= 1
    assert ok, results
    # The second attempt archived what the first could not; the result counts both.
    assert (results[0]["error"], results[0]["archived"], results[0]["attempts"]) == (None, 3, 2)
    assert results[0]["status"] == "ok"
    # Both attempts logged in. The first message's batch rolled back with the dropped
    # connection (group commit), so the retry found the whole listing new and, as on any
    # mailbox's first run, probed with one more session for a per-session listing limit.
    assert len(logins) in (2, 3)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one() == 3


def test_mailbox_parallelism_is_bounded_by_the_settings(archive_env: Path, monkeypatch):
    import flows.archive_flow as archive_flow

    monkeypatch.setenv("MAILARCHIVE_MAX_PARALLEL_MAILBOXES", "1")
    active: list[int] = [0]
    peak: list[int] = [0]
    lock = threading.Lock()
    from archive.pipeline.archiver import Archiver

    real_run = Archiver.run

    def counting_run(self, *args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.2)  # widen the window in which an unbounded run would overlap
            return real_run(self, *args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    # On the class: the flow hands each task run a copy of the archiver with its stop token.
    monkeypatch.setattr(Archiver, "run", counting_run)
    names = ["p1", "p2", "p3"]
    boxes = {name: FakeMailbox("secret", [make_message(name)]) for name in names}
    with FakePop3Server(boxes) as server:
        config = _write_config(archive_env / "boxes.toml", server, names, monkeypatch)
        ok, results = archive_flow.run_archive(config, None)
    assert ok and sorted(r["name"] for r in results) == names
    assert peak[0] == 1 and server.peak_connections == 1


def test_task_runs_are_named_per_mailbox(archive_env: Path, monkeypatch):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.archive_flow import archive_mailboxes

    boxes = {
        "north": FakeMailbox("secret", [make_message()]),
        "south": FakeMailbox("secret", [make_message()]),
    }
    with FakePop3Server(boxes) as server:
        config = _write_config(archive_env / "boxes.toml", server, list(boxes), monkeypatch)
        state = archive_mailboxes(config_path=str(config), return_state=True)
    assert state.is_completed()

    async def task_run_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
            return sorted(r.name for r in runs)

    assert asyncio.run(task_run_names()) == ["archive north", "archive south"]


def test_cli_run_json_and_exit_code(archive_env: Path, monkeypatch):
    from archive.app.cli import app

    boxes = {
        "one": FakeMailbox("secret", [make_message("cli one")]),
        "two": FakeMailbox("nope", []),
    }
    with FakePop3Server(boxes) as server:
        config = _write_config(archive_env / "boxes.toml", server, list(boxes), monkeypatch)
        result = CliRunner().invoke(app, ["run", "--config", str(config), "--json"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    by_name = {m["name"]: m for m in payload["mailboxes"]}
    assert set(by_name["one"]) >= {
        "name",
        "listed",
        "new",
        "archived",
        "duplicates",
        "deleted",
        "failed_messages",
        "status",
        "attempts",
        "error",
    }
    assert by_name["one"]["archived"] == 1 and by_name["one"]["error"] is None
    assert by_name["two"]["error"] and "secret" not in by_name["two"]["error"]


def test_demo_archives_then_finds_nothing_new(archive_env: Path, fresh_engine: Engine):
    import io

    from rich.console import Console

    from archive.app.cli import run_flow
    from archive.app.demo import run_demo
    from archive.config import Settings

    first, second = io.StringIO(), io.StringIO()
    run_demo(Settings(), 2, 25, Console(file=first, width=200), run_flow)
    run_demo(Settings(), 2, 25, Console(file=second, width=200), run_flow)
    from archive.app.demo import EXAMPLE_QUERIES

    with fresh_engine.connect() as conn:
        deliveries = conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one()
        # Every query the demo suggests runs, and each finds something.
        answers = [conn.execute(text(sql)).all() for _, sql in EXAMPLE_QUERIES]
    assert deliveries == 50
    assert all(answers), [
        title for (title, _), rows in zip(EXAMPLE_QUERIES, answers, strict=True) if not rows
    ]
    assert "messages archived" in first.getvalue() and "archive.messages" in first.getvalue()
    assert "Nothing new" in second.getvalue()
    assert "The demo placed an example legal hold demo-budget" in first.getvalue()
    assert "demo-budget (placed by an earlier demo run) still holds" in second.getvalue()


PASSWORD = "Zq-known-pop3-password-7731"


def test_progress_moves_and_no_secret_reaches_logs_or_artifacts(
    archive_env: Path, monkeypatch, caplog
):
    import asyncio
    import logging

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    import flows.archive_flow as archive_flow

    sent: list[float] = []
    import flows.artifacts as artifacts

    real_update = artifacts.update_progress_artifact

    def recording_update(artifact_id, progress, *args, **kwargs):
        sent.append(progress)
        return real_update(artifact_id, progress, *args, **kwargs)

    monkeypatch.setattr(artifacts, "update_progress_artifact", recording_update)
    monkeypatch.setattr(artifacts, "PROGRESS_INTERVAL_SECONDS", 0.0)
    boxes = {
        "left": FakeMailbox(PASSWORD, [make_message(f"left {i}") for i in range(4)]),
        "right": FakeMailbox(PASSWORD, [make_message(f"right {i}") for i in range(4)]),
        "wrong": FakeMailbox("not-the-password", [make_message("wrong")]),
    }
    with FakePop3Server(boxes) as server:
        config = _write_config(archive_env / "boxes.toml", server, list(boxes), monkeypatch)
        for name in boxes:
            monkeypatch.setenv(f"FLOW_PW_{name.upper()}", PASSWORD)
        with caplog.at_level(logging.DEBUG):
            state = archive_flow.archive_mailboxes(config_path=str(config), return_state=True)
    assert state.is_failed()  # "wrong" refuses the password
    # The bar moved through intermediate values, upwards, and never showed the failed run done.
    assert sent == sorted(sent) and sent[-1] < 100.0
    assert len([p for p in sent if 0 < p < 100]) >= 3
    flow_run_id = state.state_details.flow_run_id
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs go to the API in batches, from a background worker

    async def run_record() -> tuple[list[str], list[object], dict]:
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            run = await client.read_flow_run(flow_run_id)
            assert run.name == "archive boxes.toml"
            return [log.message for log in logs], artifacts, run.parameters

    messages, artifacts, parameters = asyncio.run(run_record())
    by_type = {a.type: a for a in artifacts}
    assert {"progress", "table", "markdown"} <= set(by_type)
    assert by_type["progress"].data < 100.0
    # Logs of the archive package reach the UI, at INFO.
    assert any("mailbox left: 4 listed, 4 new" in m for m in messages), messages
    assert any("wrong" in m and "failed" in m for m in messages)
    everything = [*messages, *(str(a.data) + str(a.description) for a in artifacts)]
    everything += [r.getMessage() for r in caplog.records] + [str(parameters)]
    assert [text for text in everything if PASSWORD in text] == []
    assert parameters == {"config_path": str(config), "mailboxes": None}


def test_cron_check_agrees_with_prefect():
    from prefect._internal.schemas.validators import validate_cron_string

    from archive.config import validate_cron

    samples = [
        "*/15 * * * *", "0 3 * * mon-fri", "5,35 8-18/2 1 jan,jul *", "@hourly", "0 0 1-31 12 0,7",
        "* * * *", "60 * * * *", "* * 0 * *", "* * * 13 *", "5-1 * * * *", "H * * * *",
        "* * * * 8", "* * * * funday", "@fortnightly", "1.5 * * * *", "*/5 1,2,3 * * SUN",
    ]  # fmt: skip

    def accepts(check, cron: str) -> bool:
        try:
            check(cron)
        except ValueError:
            return False
        return True

    verdicts = {
        cron: (accepts(validate_cron, cron), accepts(validate_cron_string, cron))
        for cron in samples
    }
    assert {cron: v for cron, v in verdicts.items() if v[0] != v[1]} == {}


def test_next_run_agrees_with_prefects_cron_schedule():
    """`mailarchive status` computes the next run without Prefect; Prefect's server computes
    the runs `serve` gets. Across DST changes (both ways, whole- and half-hour zones)."""
    import itertools
    from datetime import UTC, datetime, timedelta

    from prefect.server.schemas.schedules import CronSchedule

    from archive.config.cron import next_run

    crons = [
        "*/30 * * * *", "@daily", "0 2 * * sun", "30 2 * * *", "0 22-2 * * *", "0 0 29 2 *",
        "0 6 1 * mon", "@hourly", "0 3 * * 7", "15 1 * * *", "*/7 1-3 * * *",
        "0 9 */2 * mon-fri", "5 4 * jan,jul 1", "59 23 31 12 *", "@weekly",
    ]  # fmt: skip
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
    starts = [
        datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 10, tzinfo=UTC), datetime(2026, 3, 29, 0, 59, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 3, 8, 6, 59, tzinfo=UTC),
        datetime(2026, 4, 5, 15, 45, tzinfo=UTC),
    ]  # fmt: skip
    differ = {}
    for cron, zone, start in itertools.product(crons, zones, starts):
        schedule = CronSchedule(cron=cron, timezone=zone)
        (prefect,) = schedule._get_dates_generator(n=1, start=start + timedelta(seconds=1))
        ours = next_run(cron, zone, start)
        if prefect.astimezone(UTC) != ours.astimezone(UTC):
            differ[(cron, zone, start.isoformat())] = (str(prefect), str(ours))
    assert differ == {}


SLOW = pytest.mark.skipif(
    os.environ.get("MAILARCHIVE_SLOW_TESTS") != "1", reason="set MAILARCHIVE_SLOW_TESTS=1 to run"
)
BIN = Path(sys.executable).parent


class SilentPop3:
    """Accepts connections and never says a word: a session hangs until its socket timeout."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


def _wait_until(check, process: subprocess.Popen, what: str):
    """Poll until check() is truthy; fail at once if the served process died meanwhile."""
    while True:
        value = check()
        if value:
            return value
        assert process.poll() is None, (
            f"mailarchive serve exited ({process.returncode}) before {what}"
        )
        time.sleep(0.5)


def _run_logs(client, flow_run_id) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


@SLOW
def test_serve_runs_one_at_a_time_and_keeps_its_schedule(archive_env: Path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    silent = SilentPop3()
    config = archive_env / "served.toml"
    monkeypatch.setenv("SERVED_PW", PASSWORD)
    config.write_text(
        'schedule = "0 4 1 1 *"\ntimezone = "Europe/Paris"\n\n[[mailbox]]\nname = "slow"\n'
        f'host = "127.0.0.1"\nport = {silent.port}\ntls = "none"\nusername = "slow"\n'
        'password_env = "SERVED_PW"\ntimeout_seconds = 8\n'
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(archive_env / "prefect-home"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "MAILARCHIVE_RETRIES": "0",
    }
    log = (archive_env / "serve.log").open("wb")
    served = subprocess.Popen(
        [BIN / "mailarchive", "serve", "--config", str(config), "--name", "served"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with get_client(sync_client=True) as client:

            def deployment():
                try:
                    return client.read_deployment_by_name("archive-mailboxes/served")
                except Exception:
                    return None

            served_deployment = _wait_until(deployment, served, "registering its deployment")
            # Triggered from the Prefect CLI, as a user would.
            triggered = subprocess.run(
                [BIN / "prefect", "deployment", "run", "archive-mailboxes/served"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            first_id = re.search(r"UUID: ([0-9a-f-]{36})", triggered.stdout).group(1)

            def state_of(run_id):
                return client.read_flow_run(run_id).state

            _wait_until(lambda: state_of(first_id).is_running(), served, "the first run started")
            # While it runs, a second run (by hand) waits for it rather than overlapping.
            second = client.create_flow_run_from_deployment(served_deployment.id)
            second_state = _wait_until(
                lambda: state_of(second.id) if state_of(second.id).is_final() else None,
                served,
                "the second run was decided",
            )
            first_state = _wait_until(
                lambda: state_of(first_id) if state_of(first_id).is_final() else None,
                served,
                "the first run ended",
            )
            second_states = client.read_flow_run_states(second.id)
            second_logs = _run_logs(client, second.id)
            served.send_signal(signal.SIGTERM)
            served.wait()
            after = client.read_deployment_by_name("archive-mailboxes/served")
    finally:
        if served.poll() is None:
            served.kill()
            served.wait()
        log.close()
        silent.close()
    output = (archive_env / "serve.log").read_text(errors="replace")
    assert first_state.is_failed(), first_state  # the silent server timed it out
    # The second run was queued, not cancelled; it ran once the first had ended, and said so.
    assert "AwaitingConcurrencySlot" in [s.name for s in second_states], second_states
    assert second_state.is_failed(), (second_state, output[-3000:])
    assert second_state.timestamp > first_state.timestamp
    assert any("this run waited" in line for line in second_logs), second_logs
    assert len(silent.connections) == 2
    assert served_deployment.parameters == {"config_path": str(config.resolve())}
    assert served_deployment.global_concurrency_limit.limit == 1
    assert served_deployment.concurrency_options.collision_strategy == "ENQUEUE"
    (schedule,) = served_deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 4 1 1 *", "Europe/Paris")
    # Stopping `serve` leaves the schedule on.
    assert not after.paused and after.schedules[0].active
    assert PASSWORD not in output
