"""What a run reports across retries, and what SIGTERM does to `mailarchive run`, against a
real Prefect server, the fake POP3 server over TCP and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from archive.errors import Pop3ConnectionError
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.flows.test_flow import _write_config, archive_env, prefect_server  # noqa: F401
from tests.support.mail import make_message

pytestmark = pytest.mark.prefect
BIN = Path(sys.executable).parent


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> dict[str, object]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        return {a.type: a.data for a in artifacts}

    return asyncio.run(read())


def test_a_retry_adds_to_what_the_first_attempt_committed(
    archive_env: Path,  # noqa: F811
    fresh_engine: Engine,
    monkeypatch,
):
    import flows.archive_flow as archive_flow

    real_get_archiver = archive_flow.get_archiver
    sessions: list[int] = []

    def get_archiver(settings):
        archiver = real_get_archiver(settings)

        def connect(endpoint):
            # The first session archives and deletes; then the server cannot be reached.
            sessions.append(1)
            if len(sessions) > 1:
                raise Pop3ConnectionError(f"{endpoint.describe()}: connection refused")
            return archiver.connect(endpoint)

        return replace(archiver, connect=connect)

    monkeypatch.setattr(archive_flow, "get_archiver", get_archiver)
    raws = [make_message(f"retry {i}") for i in range(3)]
    with FakePop3Server({"r": FakeMailbox("secret", list(raws))}) as server:
        config = _write_config(archive_env / "boxes.toml", server, ["r"], monkeypatch)
        config.write_text(config.read_text() + "delete_after_archive = true\n")
        state = archive_flow.archive_mailboxes(config_path=str(config), return_state=True)
        left = list(server.mailbox("r").messages)
    (result,) = state.result(raise_on_failure=False).results
    assert left == []  # the first attempt deleted all three
    # The second session of the first attempt and both retries could not connect.
    assert len(sessions) == 4
    assert (result["status"], result["archived"], result["deleted"]) == ("failed", 3, 3)
    assert result["attempts"] == 3 and "connection refused" in result["error"]
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one() == 3
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert artifacts["progress"] < 100
    summary = str(artifacts["markdown"])
    assert "1 mailbox: 1 failed; 3 archived" in summary and "3 deleted" in summary
    assert "## Failures (1 of 1 mailboxes)" in summary


def test_the_summary_counts_failed_mailboxes_and_progress_stays_below_done(
    archive_env: Path,  # noqa: F811
    monkeypatch,
):
    from flows.archive_flow import archive_mailboxes

    boxes = {
        "fine": FakeMailbox("secret", [make_message(f"fine {i}") for i in range(3)]),
        "badpw": FakeMailbox("other", [make_message("badpw")]),
    }
    with FakePop3Server(boxes) as server:
        config = _write_config(archive_env / "boxes.toml", server, list(boxes), monkeypatch)
        state = archive_mailboxes(config_path=str(config), return_state=True)
    assert state.is_failed()
    artifacts = _artifacts(state.state_details.flow_run_id)
    summary = str(artifacts["markdown"])
    assert "2 mailboxes: 1 ok, 1 failed; 3 archived" in summary, summary
    assert "0 messages failed" in summary and "**badpw**" in summary
    assert artifacts["progress"] < 100
    rows = artifacts["table"]
    table = {row["name"]: row for row in (json.loads(rows) if isinstance(rows, str) else rows)}
    assert (table["fine"]["status"], table["badpw"]["status"]) == ("ok", "failed")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_stops_mailarchive_run_before_any_dele(
    signum: int,
    code: int,
    archive_env: Path,  # noqa: F811
    fresh_engine: Engine,
    monkeypatch,
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.settings import PREFECT_API_URL

    raws = [make_message(f"term {i}", "y" * 20_000) for i in range(40)]
    # ~0.25 s per message: the signal lands mid-session, long before the DELEs would go out.
    options = FakeServerOptions(trickle=(4096, 0.05))
    with FakePop3Server({"t": FakeMailbox("secret", list(raws))}, options=options) as server:
        name = signal.Signals(signum).name
        config = _write_config(archive_env / f"{name}.toml", server, ["t"], monkeypatch)
        config.write_text(config.read_text() + "delete_after_archive = true\n")
        env = {
            **os.environ,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PREFECT_HOME": str(archive_env / "prefect-home"),
        }
        process = subprocess.Popen(
            [BIN / "mailarchive", "run", "--config", str(config), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # RETR 9 goes out once the first message has been read (a window of 8).
            while "RETR 9" not in [c for _, c in server.commands]:
                assert process.poll() is None, process.communicate()
                time.sleep(0.1)
            at_signal = len(server.commands)
            process.send_signal(signum)
            stdout, stderr = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        commands = [c for _, c in server.commands]
        left = list(server.mailbox("t").messages)
    after = commands[at_signal:]
    assert process.returncode == code, stderr.decode(errors="replace")[-3000:]
    assert not [c for c in commands if c.startswith("DELE")] and "QUIT" not in commands
    assert not [c for c in after if c.startswith(("AUTH", "USER", "CAPA"))]  # no new session
    assert len([c for c in after if c.startswith("RETR")]) <= 1
    assert left == raws  # nothing deleted
    payload = json.loads(stdout.decode().strip().splitlines()[-1])
    assert (payload["interrupted"], payload["exit_code"]) == (name, code)
    (result,) = payload["mailboxes"]
    assert (result["status"], result["interrupted"], result["deleted"]) == ("partial", True, 0)
    assert 1 <= result["archived"] < len(raws)
    with fresh_engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one()
    assert stored == result["archived"]  # what was in flight was committed, and counted

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"archive {name}.toml"]))
        )
    assert run.state is not None and run.state.is_cancelled(), run.state
    artifacts = _artifacts(run.id)
    assert f"{result['archived']} archived" in str(artifacts["markdown"])
    assert f"interrupted by {name}" in str(artifacts["markdown"])
    assert artifacts["progress"] < 100


SLOW = pytest.mark.skipif(
    os.environ.get("MAILARCHIVE_SLOW_TESTS") != "1", reason="set MAILARCHIVE_SLOW_TESTS=1 to run"
)


@SLOW
def test_sigterm_to_serve_cancels_the_run_in_flight_before_any_dele(
    archive_env: Path,  # noqa: F811
    fresh_engine: Engine,
    monkeypatch,
):
    """`docker stop` on `mailarchive serve`: Prefect's runner passes SIGTERM on to the flow
    run's process, which stops as `run` does and ends Cancelled with its counts."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    raws = [make_message(f"served {i}", "z" * 20_000) for i in range(40)]
    options = FakeServerOptions(trickle=(4096, 0.05))
    with FakePop3Server({"v": FakeMailbox("secret", list(raws))}, options=options) as server:
        config = _write_config(archive_env / "served.toml", server, ["v"], monkeypatch)
        config.write_text(config.read_text() + "delete_after_archive = true\n")
        env = {
            **os.environ,
            "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PREFECT_HOME": str(archive_env / "prefect-home"),
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }
        log = (archive_env / "serve.log").open("wb")
        served = subprocess.Popen(
            [BIN / "mailarchive", "serve", "--config", str(config), "--name", "stopped"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with get_client(sync_client=True) as client:
                while True:
                    assert served.poll() is None, "serve exited before registering"
                    try:
                        deployment = client.read_deployment_by_name("archive-mailboxes/stopped")
                        break
                    except Exception:
                        time.sleep(0.5)
                flow_run = client.create_flow_run_from_deployment(deployment.id)
                while "RETR 9" not in [c for _, c in server.commands]:
                    assert served.poll() is None, "serve exited before the run retrieved mail"
                    time.sleep(0.1)
                at_signal = len(server.commands)
                served.send_signal(signal.SIGTERM)
                served.wait()
                while not (state := client.read_flow_run(flow_run.id).state).is_final():
                    time.sleep(0.5)
        finally:
            if served.poll() is None:
                served.kill()
                served.wait()
            log.close()
        commands = [c for _, c in server.commands]
        left = list(server.mailbox("v").messages)
    output = (archive_env / "serve.log").read_text(errors="replace")
    assert state.is_cancelled(), (state, output[-3000:])
    assert not [c for c in commands if c.startswith("DELE")] and "QUIT" not in commands
    assert not [c for c in commands[at_signal:] if c.startswith(("AUTH", "USER", "CAPA"))]
    assert left == raws
    with fresh_engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one()
    summary = str(_artifacts(flow_run.id).get("markdown"))
    assert 1 <= stored < len(raws)
    assert f"{stored} archived" in summary and "interrupted by SIGTERM" in summary, output[-3000:]
