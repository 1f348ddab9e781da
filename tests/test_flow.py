"""The Prefect flow and the CLI, against one real Prefect server shared by this module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from archive.pop3.fakeserver import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.support.mail import make_message

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def archive_env(prefect_server, fresh_db_url: str, tmp_path: Path, monkeypatch) -> Path:
    from archive import runtime

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", (tmp_path / "objects").as_uri())
    monkeypatch.setenv("MAILARCHIVE_RETRY_DELAY_SECONDS", "0")
    monkeypatch.setenv("MAILARCHIVE_RETRIES", "2")
    yield tmp_path
    runtime.reset()


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
        ok, results = run_archive(config, None, max_workers=2)
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


def test_transient_login_error_is_retried(archive_env: Path, monkeypatch):
    from flows.archive_flow import run_archive

    options = FakeServerOptions(login_error_code="SYS/TEMP")
    with FakePop3Server(
        {"temp": FakeMailbox("secret", [make_message()])}, options=options
    ) as server:
        config = _write_config(archive_env / "boxes.toml", server, ["temp"], monkeypatch)
        ok, results = run_archive(config, None, max_workers=2)
        attempts = [c for _, c in server.commands if c.startswith(("PASS", "AUTH"))]
    assert not ok
    assert "SYS/TEMP" in results[0]["error"]
    assert len(attempts) == 3  # first try + MAILARCHIVE_RETRIES=2


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
    from archive.cli import app

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
        "failed",
        "error",
    }
    assert by_name["one"]["archived"] == 1 and by_name["one"]["error"] is None
    assert by_name["two"]["error"] and "secret" not in by_name["two"]["error"]


def test_demo_archives_then_finds_nothing_new(archive_env: Path, fresh_engine: Engine):
    import io

    from rich.console import Console

    from archive.cli import run_flow
    from archive.config import Settings
    from archive.demo import run_demo

    first, second = io.StringIO(), io.StringIO()
    run_demo(Settings(), 2, 25, Console(file=first, width=200), run_flow)
    run_demo(Settings(), 2, 25, Console(file=second, width=200), run_flow)
    with fresh_engine.connect() as conn:
        deliveries = conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one()
        found = conn.execute(
            text(
                "SELECT count(*) FROM archive.messages WHERE search @@ websearch_to_tsquery('simple', 'invoice')"
            )
        ).scalar_one()
    assert deliveries == 50
    assert found >= 2
    assert "messages archived" in first.getvalue() and "archive.messages" in first.getvalue()
    assert "Nothing new" in second.getvalue()
