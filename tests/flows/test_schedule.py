"""`mailarchive schedule show|pause|resume`: the schedule `serve` registered, paused through
Prefect's API, stays paused when `serve` registers it again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def _register(config: Path, name: str, paused: bool | None) -> None:
    from archive.config import load_mailbox_file
    from flows.deployments import build_deployment

    build_deployment(config, load_mailbox_file(config), name, paused).apply()


def _paused(name: str) -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return bool(client.read_deployment_by_name(f"archive-mailboxes/{name}").paused)


def _cli(*args: str):
    from archive.app.cli import app

    return CliRunner().invoke(app, list(args))


def test_pause_survives_serve_registering_again_and_resume_undoes_it(
    prefect_server, tmp_path: Path, monkeypatch
):
    from flows.deployments import schedule_state

    monkeypatch.setenv("SCHED_PW", "secret")
    config = tmp_path / "nightly.toml"
    config.write_text(
        'schedule = "0 3 * * *"\ntimezone = "Europe/Paris"\n\n[[mailbox]]\nname = "m"\n'
        'host = "127.0.0.1"\nport = 110\ntls = "none"\nusername = "m"\npassword_env = "SCHED_PW"\n'
    )
    _register(config, "nightly", None)
    shown = _cli("schedule", "show", "nightly")
    assert shown.exit_code == 0, shown.output
    assert "archive-mailboxes/nightly: on; 0 3 * * * Europe/Paris" in shown.output

    paused = _cli("schedule", "pause", "nightly")
    assert paused.exit_code == 0 and "nightly: paused" in paused.output, paused.output
    assert _paused("nightly")

    # What `serve` does on a restart: register again with the state it finds.
    state = schedule_state("nightly")
    assert state is not None
    _register(config, "nightly", state.paused)
    assert _paused("nightly")
    # Registering without it would resume the schedule: the reason `serve` reads it first.
    _register(config, "nightly", None)
    assert not _paused("nightly")

    _cli("schedule", "pause", "archive-mailboxes/nightly")
    resumed = _cli("schedule", "resume", "nightly")
    assert resumed.exit_code == 0 and "nightly: on" in resumed.output, resumed.output
    assert not _paused("nightly")


def test_an_unknown_deployment_is_named(prefect_server):
    done = _cli("schedule", "pause", "nope")
    assert done.exit_code == 1
    assert "no deployment archive-mailboxes/nope" in done.output


def test_schedule_commands_print_json(prefect_server, tmp_path: Path, monkeypatch):
    import json

    monkeypatch.setenv("SCHED_PW", "secret")
    config = tmp_path / "hourly.toml"
    config.write_text(
        'schedule = "15 * * * *"\n\n[[mailbox]]\nname = "m"\nhost = "127.0.0.1"\nport = 110\n'
        'tls = "none"\nusername = "m"\npassword_env = "SCHED_PW"\n'
    )
    _register(config, "hourly", None)
    states = []
    for verb in ("show", "pause", "resume"):
        done = _cli("schedule", verb, "hourly", "--json")
        assert done.exit_code == 0, done.output
        states.append(json.loads(done.stdout))
    assert [s["paused"] for s in states] == [False, True, False]
    assert states[0]["deployment"] == "archive-mailboxes/hourly"
    assert states[0]["schedules"] == ["15 * * * * UTC"]
