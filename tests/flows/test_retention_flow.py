"""The `apply-retention` flow removes what the policies expire, like the command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from tests.support.mail import fake_box, make_message


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def test_flow_applies_retention(
    prefect_server, archiver, fresh_engine: Engine, monkeypatch, tmp_path: Path
):
    from flows.retention_flow import apply_retention

    with FakePop3Server({"ann": FakeMailbox("secret", [make_message("old")])}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    with fresh_engine.begin() as conn:
        conn.execute(
            text("UPDATE mailarchive.delivery SET archived_at = now() - interval '9 days'")
        )
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_engine.url.render_as_string(False))
    config = tmp_path / "boxes.toml"
    config.write_text(
        'retention_days = 7\nretention_from = "archived"\n\n[[mailbox]]\nname = "ann"\n'
        'host = "h"\nusername = "ann"\npassword_env = "X"\n'
    )
    report = apply_retention(str(config))
    assert (report["applied"], report["messages"], report["deliveries_removed"]) == (True, 1, 1)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM mailarchive.message")).scalar() == 0
