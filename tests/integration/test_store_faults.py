"""Object-store faults during a delete_after_archive run: a retried success, or a clear
failure of the mailbox with every message still on the server. Never a DELE without a
verified copy."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore, ObjectStore, S3Store, raw_key, read_verified
from tests.support.mail import fake_box, make_message
from tests.support.moto import bucket_behind_fault_proxy, moto_server
from tests.support.s3_faults import S3FaultProxy

BUCKET = "faults"
MAILS = [make_message(f"fault {n}", "body " * 4000) for n in range(4)]


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def proxy(moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3FaultProxy]:
    with bucket_behind_fault_proxy(moto, BUCKET, monkeypatch, tmp_path) as running:
        yield running


def _run(engine: Engine, store: ObjectStore, monkeypatch) -> tuple[object, FakePop3Server]:
    archiver = Archiver(writer=IndexWriter(engine), store=store, default_timeout=10)
    with FakePop3Server({"box": FakeMailbox("secret", list(MAILS))}) as server:
        box = fake_box(monkeypatch, server, "box", delete_after_archive=True)
        try:
            outcome: object = archiver.run(box)
        except MailboxFailed as failed:
            outcome = failed
    return outcome, server


def _deles(server: FakePop3Server) -> list[str]:
    return [command for _, command in server.commands if command.startswith("DELE")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_500s_are_retried_and_the_run_succeeds(proxy, fresh_engine, monkeypatch):
    store = S3Store(proxy.bucket)
    proxy.faults.errors_left = 3
    outcome, server = _run(fresh_engine, store, monkeypatch)
    assert not isinstance(outcome, MailboxFailed), outcome
    assert outcome.archived == 4 and outcome.deleted == 4  # type: ignore[attr-defined]
    assert proxy.faults.served_500 == 3
    assert all(read_verified(store, raw_key(_sha(m)), _sha(m)) == m for m in MAILS)


def test_other_bytes_on_get_fail_the_mailbox_without_a_dele(proxy, fresh_engine, monkeypatch):
    proxy.faults.corrupt_gets = True
    outcome, server = _run(fresh_engine, S3Store(proxy.bucket), monkeypatch)
    assert isinstance(outcome, MailboxFailed)
    # botocore's response checksum or our read-back hash catches it, whichever reads first.
    assert "box" in str(outcome)
    assert "SHA-256" in str(outcome) or "checksum" in str(outcome).lower()
    assert _deles(server) == []


def test_a_slow_store_times_out_without_a_dele(proxy, fresh_engine, monkeypatch):
    proxy.faults.delay_seconds = 2.0
    store = S3Store(proxy.bucket, read_timeout=0.5, max_attempts=1)
    outcome, server = _run(fresh_engine, store, monkeypatch)
    assert isinstance(outcome, MailboxFailed) and outcome.transient
    assert "timeout" in str(outcome).lower() or "timed out" in str(outcome).lower()
    assert _deles(server) == []


def test_a_store_refusing_connections_fails_without_a_dele(fresh_engine, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: refused
    outcome, server = _run(fresh_engine, S3Store("nowhere", max_attempts=1), monkeypatch)
    assert isinstance(outcome, MailboxFailed) and outcome.transient
    assert _deles(server) == []


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real file system that fills up. Needs root (CI runs as root)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_store_fails_the_mailbox_without_a_dele(small_filesystem, fresh_engine, monkeypatch):
    outcome, server = _run(fresh_engine, LocalStore(small_filesystem / "objects"), monkeypatch)
    assert isinstance(outcome, MailboxFailed)
    assert "No space left on device" in str(outcome) and "box" in str(outcome)
    assert _deles(server) == []


def test_a_read_only_store_fails_the_mailbox_without_a_dele(
    small_filesystem, fresh_engine, monkeypatch
):
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    outcome, server = _run(fresh_engine, LocalStore(small_filesystem / "objects"), monkeypatch)
    assert isinstance(outcome, MailboxFailed)
    assert "Read-only file system" in str(outcome)
    assert _deles(server) == []
