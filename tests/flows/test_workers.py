"""Scale-out: a real Prefect server (`mailarchive server`, on PostgreSQL), `prefect deploy --all`
from prefect.yaml, two `prefect worker start` processes, and the dispatcher flow.

Slow (one server start, three Prefect processes, a Python process per flow run), so it runs
with MAILARCHIVE_SLOW_TESTS=1, as CI does.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from tests.support.mail import make_message
from tests.support.postgres import DatabaseFactory

pytestmark = [
    pytest.mark.prefect,
    pytest.mark.skipif(
        os.environ.get("MAILARCHIVE_SLOW_TESTS") != "1",
        reason="set MAILARCHIVE_SLOW_TESTS=1 to run",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MAILBOXES = ("ant", "bee", "cow")
MESSAGES = 3


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


class Processes:
    """Child processes of one test, each logging to a file; all stopped at the end."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str | Path]) -> subprocess.Popen[bytes]:
        with (self.directory / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def alive(self, *names: str) -> None:
        for name in names:
            code = self.running[name].poll()
            assert code is None, f"{name} exited with {code}:\n{self.log(name)[-3000:]}"

    def stop(self, name: str) -> int:
        process = self.running.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            process = self.running.pop(name)
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def prefect_db(databases: DatabaseFactory) -> Iterator[str]:
    """An empty database for this test's Prefect server, on the test PostgreSQL."""
    admin = create_engine(
        make_url(databases.admin).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    name = f"{databases.prefix}_prefect"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(databases.admin).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _taken(log: str) -> set[str]:
    """Flow runs a worker started: both may try a run; the server lets one of them have it."""
    tried = set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", log))
    return tried - set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", log))


def test_two_workers_share_the_mailboxes_and_each_is_archived_once(
    prefect_db: str, fresh_db_url: str, fresh_engine: Engine, tmp_path: Path
):
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MAILARCHIVE_DATABASE_URL": fresh_db_url,
        "MAILARCHIVE_STORE_URL": (tmp_path / "objects").as_uri(),
        "MAILARCHIVE_RETRIES": "0",
    }
    boxes = {
        name: FakeMailbox(f"pw-{name}", [make_message(f"{name} {i}") for i in range(MESSAGES)])
        for name in MAILBOXES
    }
    processes = Processes(tmp_path, env)
    try:
        with FakePop3Server(boxes) as pop3, httpx.Client(base_url=api, timeout=30) as http:
            config = tmp_path / "boxes.toml"
            config.write_text(
                "\n".join(
                    f'[[mailbox]]\nname = "{name}"\nhost = "{pop3.host}"\nport = {pop3.port}\n'
                    f'tls = "none"\nusername = "{name}"\npassword_env = "PW_{name.upper()}"\n'
                    for name in MAILBOXES
                )
            )
            env.update({f"PW_{name.upper()}": f"pw-{name}" for name in MAILBOXES})

            processes.start(
                "server",
                [BIN / "mailarchive", "server", "--port", str(port), "--database-url", prefect_db],
            )
            while not _answers(http, "/health"):
                processes.alive("server")
                time.sleep(0.5)
            # The process pool, as `prefect work-pool create mailarchive --type process` makes
            # it; then both workers and `prefect deploy` start at once.
            from prefect.workers.process import ProcessWorker

            created = http.post(
                "/work_pools/",
                json={
                    "name": "mailarchive",
                    "type": "process",
                    "base_job_template": ProcessWorker.get_default_base_job_template(),
                },
            )
            assert created.status_code == 201, created.text
            worker = [BIN / "prefect", "worker", "start", "--pool", "mailarchive"]
            for name in ("w1", "w2"):
                processes.start(
                    name, [*worker, "--name", name, "--type", "process", "--limit", "2"]
                )
            deployed = subprocess.run(
                [BIN / "prefect", "--no-prompt", "deploy", "--all"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr

            dispatch = http.get("/deployments/name/archive-dispatch/scheduled").json()
            run = http.post(
                f"/deployments/{dispatch['id']}/create_flow_run",
                json={"parameters": {"config_path": str(config), "poll_seconds": 0.5}},
            ).json()
            while not _final(http.get(f"/flow_runs/{run['id']}").json()):
                processes.alive("server", "w1", "w2")
                time.sleep(1)
            dispatched = http.get(f"/flow_runs/{run['id']}").json()
            children = http.post(
                "/flow_runs/filter",
                json={"flow_runs": {"parent_flow_run_id": {"any_": [run["id"]]}}},
            ).json()
            retrieved = Counter(
                user for user, command in pop3.commands if command.startswith("RETR")
            )
        w1, w2 = _taken(processes.log("w1")), _taken(processes.log("w2"))
        assert processes.stop("w1") == 0 and processes.stop("w2") == 0
        # SIGTERM: uvicorn shuts the server down gracefully, then re-raises the signal so the
        # exit status says why it stopped; the port is closed.
        assert processes.stop("server") == -signal.SIGTERM
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        processes.stop_all()

    assert dispatched["state"]["type"] == "COMPLETED", (dispatched["state"], processes.log("w1"))
    assert dispatched["name"] == "dispatch boxes.toml"
    child_ids = {c["id"] for c in children}
    assert sorted(c["parameters"]["mailboxes"][0] for c in children) == sorted(MAILBOXES)
    assert all(c["state"]["type"] == "COMPLETED" for c in children)
    assert all(c["name"] == f"archive {c['parameters']['mailboxes'][0]}" for c in children)
    # Both workers took mailbox runs, and no run was taken twice.
    assert child_ids & w1 and child_ids & w2, (w1, w2, child_ids)
    assert not (w1 & w2)
    # Each message was retrieved once (by one worker), and is in the archive once.
    assert retrieved == dict.fromkeys(MAILBOXES, MESSAGES)
    with fresh_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT mailbox, count(*), count(DISTINCT uidl) FROM archive.messages GROUP BY 1")
        ).all()
    assert sorted(rows) == [(name, MESSAGES, MESSAGES) for name in sorted(MAILBOXES)]


def _answers(http: httpx.Client, path: str) -> bool:
    try:
        return http.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def _final(flow_run: dict) -> bool:
    return flow_run["state"]["type"] in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
