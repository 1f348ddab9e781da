"""moto's S3 server for tests: the real S3 protocol over HTTP on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.s3_faults import S3FaultProxy


@contextmanager
def moto_server() -> Iterator[str]:
    """Run moto's S3 server on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def bucket_behind_fault_proxy(
    moto_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[S3FaultProxy]:
    """A fresh bucket on `moto_url`, reached through an `S3FaultProxy` (its `bucket`), with
    test credentials in AWS_* and nothing of the developer's own AWS setup."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ["AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"]:
        monkeypatch.delenv(name, raising=False)
    bucket = f"{prefix}-{os.urandom(4).hex()}"
    boto3.session.Session().client("s3", endpoint_url=moto_url).create_bucket(Bucket=bucket)
    with S3FaultProxy(moto_url) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.url)
        running.bucket = bucket  # type: ignore[attr-defined]
        yield running
