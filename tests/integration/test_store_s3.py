from __future__ import annotations

import io
import os
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from archive.errors import ConfigError, StoreError, is_transient
from archive.store import (
    ObjectNotFound,
    S3Store,
    open_store,
    part_key,
    put_verified,
    raw_key,
    sha256_of_stream,
)
from tests.support.moto import moto_server
from tests.support.streams import (
    BUCKET,
    SECRET,
    GeneratedStream,
    MiB,
    UnreadableStream,
    sha,
)

# S3Store against moto's S3 server


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key=SECRET,
        ).create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture
def s3_env(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS_* environment of a deployment against an S3-compatible server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    # Nothing from the developer's own AWS setup may leak in.
    for name in ["AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return moto_endpoint


@pytest.fixture
def s3_store(s3_env: str) -> S3Store:
    return S3Store(BUCKET, "pfx")


def bucket_keys(endpoint: str, prefix: str) -> list[str]:
    client = boto3.session.Session().client("s3", endpoint_url=endpoint)
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_s3_roundtrip(s3_store: S3Store, s3_env: str):
    data = os.urandom(100_000)
    key = raw_key(sha(data))
    assert not s3_store.exists(key)

    s3_store.put(key, io.BytesIO(data), len(data))

    assert s3_store.exists(key)
    assert s3_store.get(key) == data
    with s3_store.open(key) as stream:
        pieces = iter(lambda: stream.read(7000), b"")
        assert b"".join(pieces) == data
    assert f"pfx/{key}" in bucket_keys(s3_env, "pfx/")


def test_s3_url_names_bucket_prefix_and_endpoint_only(s3_store: S3Store, s3_env: str):
    assert s3_store.url == f"s3://{BUCKET}/pfx (endpoint {s3_env})"
    assert SECRET not in s3_store.url and "testing" not in s3_store.url


def test_s3_client_retries_and_path_style(s3_store: S3Store):
    config = s3_store._client.meta.config
    # Five requests in all: the first try and four retries.
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert config.s3 == {"addressing_style": "path"}
    assert (config.connect_timeout, config.read_timeout) == (10.0, 60.0)


def test_s3_missing_object(s3_store: S3Store):
    key = raw_key(sha(b"not in the bucket"))
    assert s3_store.exists(key) is False
    with pytest.raises(ObjectNotFound) as caught:
        s3_store.open(key)
    assert key in str(caught.value) and BUCKET in str(caught.value)
    assert not is_transient(caught.value)


def test_s3_put_verified_and_heal(s3_store: S3Store, s3_env: str):
    data = b"Subject: s3\r\n\r\nbody\r\n"
    key = raw_key(sha(data))
    assert put_verified(s3_store, key, io.BytesIO(data), sha(data), len(data)) is True
    assert put_verified(s3_store, key, UnreadableStream(), sha(data), len(data)) is False

    raw = boto3.session.Session().client("s3", endpoint_url=s3_env)
    raw.put_object(Bucket=BUCKET, Key=f"pfx/{key}", Body=b"bit rot")
    assert put_verified(s3_store, key, io.BytesIO(data), sha(data), len(data)) is True
    assert s3_store.get(key) == data


def test_s3_large_object_goes_multipart(s3_store: S3Store, s3_env: str, tmp_path: Path):
    size = 20 * MiB
    spool = tmp_path / "spool"
    with spool.open("wb") as out:
        source = GeneratedStream(size, seed=3)
        while block := source.read(MiB):
            out.write(block)
    with spool.open("rb") as f:
        digest, _ = sha256_of_stream(f)
    key = raw_key(digest)

    with spool.open("rb") as src:
        assert put_verified(s3_store, key, src, digest, size) is True

    raw = boto3.session.Session().client("s3", endpoint_url=s3_env)
    head = raw.head_object(Bucket=BUCKET, Key=f"pfx/{key}")
    assert head["ContentLength"] == size
    # A multipart upload's ETag is "<md5 of part md5s>-<number of parts>".
    assert "-" in head["ETag"]


def test_open_store_s3_uses_the_environment(s3_env: str):
    store = open_store(f"s3://{BUCKET}/via/open_store")
    data = b"from the environment"
    key = part_key(sha(data))
    assert put_verified(store, key, io.BytesIO(data), sha(data), len(data)) is True
    assert store.get(key) == data
    assert bucket_keys(s3_env, "via/") == [f"via/open_store/{key}"]


def test_s3_unreachable_endpoint_is_a_store_error_without_secrets(
    s3_env: str, monkeypatch: pytest.MonkeyPatch
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    store = S3Store(BUCKET, "pfx", max_attempts=2, connect_timeout=1, read_timeout=1)
    sent: list[str] = []
    store._client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request.method)
    )
    key = raw_key(sha(b"unreachable"))

    failures = []
    for attempt in [
        lambda: store.exists(key),
        lambda: store.open(key),
        lambda: store.put(key, io.BytesIO(b"unreachable"), 11),
    ]:
        with pytest.raises(StoreError) as caught:
            attempt()
        failures.append(caught.value)
    # max_attempts counts every request: one try and one retry per call.
    assert sent == ["HEAD", "HEAD", "GET", "GET", "PUT", "PUT"]

    for failure in failures:
        assert is_transient(failure)
        message = str(failure)
        assert BUCKET in message and key in message and str(closed_port) in message
        everything = "".join(traceback.format_exception(failure))
        assert SECRET not in everything


def test_archiver_keeps_originals_and_attachments_in_s3(
    s3_store: S3Store, s3_env: str, fresh_engine, monkeypatch
):
    from archive.index.ledger import IndexWriter
    from archive.pipeline.archiver import Archiver
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server
    from tests.support.mail import mailbox_config, make_message

    csv = b"a,b\r\n1,2\r\n"
    raw = make_message("to s3", attachments=(("r.csv", csv, "text/csv"),))
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=s3_store, default_timeout=10)
    with FakePop3Server({"s3box": FakeMailbox("pw", [raw])}) as server:
        box = mailbox_config(
            monkeypatch, "s3box", server.host, server.port, "s3box", "pw", tls="none"
        )
        result = archiver.run(box)
    assert result.archived == 1
    keys = bucket_keys(s3_env, "pfx/")
    assert f"pfx/{raw_key(sha(raw))}" in keys
    assert f"pfx/{part_key(sha(csv))}" in keys
    assert s3_store.get(raw_key(sha(raw))) == raw


def test_s3_verified_reads_scan_and_delete(s3_env: str):
    from archive.errors import IntegrityError
    from archive.store import ObjectState, check_object, read_verified

    s3_store = S3Store(BUCKET, "verify-scan")  # a prefix of its own: the bucket is shared

    data = b"Subject: s3\r\n\r\nbody\r\n"
    digest = sha(data)
    key = raw_key(digest)
    put_verified(s3_store, key, io.BytesIO(data), digest, len(data))
    assert read_verified(s3_store, key, digest) == data
    assert [(o.key, o.size) for o in s3_store.scan("raw/")] == [(key, len(data))]
    # Another writer replaces the object behind the archive's back.
    boto3.session.Session().client("s3", endpoint_url=s3_env).put_object(
        Bucket=BUCKET, Key=f"verify-scan/{key}", Body=b"Subject: s3\r\n\r\nBODY\r\n"
    )
    with pytest.raises(IntegrityError, match=digest):
        read_verified(s3_store, key, digest)
    assert check_object(s3_store, key, digest).state is ObjectState.MISMATCH
    s3_store.delete(key)
    assert list(s3_store.scan("raw/")) == []
    assert check_object(s3_store, key, digest).state is ObjectState.MISSING


def test_s3_object_lock_keeps_originals_immutable(s3_env: str):
    """On a bucket with Object Lock, originals carry the retention the settings ask for, and
    a delete of the locked version is refused; parts are written without a lock."""
    from datetime import UTC, datetime, timedelta

    from archive.store import ObjectLock

    client = boto3.session.Session().client("s3", endpoint_url=s3_env)
    client.create_bucket(Bucket="locked-archive", ObjectLockEnabledForBucket=True)
    store = S3Store("locked-archive", object_lock=ObjectLock("COMPLIANCE", 30))
    original, part = b"Subject: kept\r\n\r\nfor the auditors\r\n", b"%PDF-1.4 part"
    put_verified(store, raw_key(sha(original)), io.BytesIO(original), sha(original), len(original))
    put_verified(store, part_key(sha(part)), io.BytesIO(part), sha(part), len(part))

    head = client.head_object(Bucket="locked-archive", Key=raw_key(sha(original)))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30)
    assert "ObjectLockMode" not in client.head_object(
        Bucket="locked-archive", Key=part_key(sha(part))
    )
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied|locked|retention"):
        client.delete_object(
            Bucket="locked-archive", Key=raw_key(sha(original)), VersionId=head["VersionId"]
        )
    assert store.get(raw_key(sha(original))) == original


def test_object_lock_needs_an_s3_store_and_both_settings(monkeypatch, tmp_path):
    from archive.config import Settings
    from archive.store import ObjectLock

    with pytest.raises(ConfigError, match="not s3://"):
        open_store(tmp_path.as_uri(), object_lock=ObjectLock("GOVERNANCE", 1))
    monkeypatch.setenv("MAILARCHIVE_S3_OBJECT_LOCK_MODE", "GOVERNANCE")
    with pytest.raises(ConfigError, match="both"):
        Settings().object_lock()
    monkeypatch.setenv("MAILARCHIVE_S3_OBJECT_LOCK_DAYS", "365")
    assert Settings().object_lock() == ObjectLock("GOVERNANCE", 365)
