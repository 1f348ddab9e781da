"""S3 uploads carry the SHA-256 (x-amz-checksum-sha256), and the read-back GET is skipped only
where no DELE depends on the object.

moto's server (5.2.5) stores and echoes the checksum but does not compare it with the body
(its own TODO), so AWS's refusal (400 BadDigest) is played by the fault proxy in front of it
(`check_sha256`), which hashes each PUT body as S3 does.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from archive.errors import IntegrityError, StoreError, is_transient
from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import S3Store, part_key, put_verified, raw_key
from tests.support.mail import fake_box, make_message
from tests.support.moto import bucket_behind_fault_proxy, moto_server
from tests.support.s3_faults import S3FaultProxy


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def proxy(moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3FaultProxy]:
    with bucket_behind_fault_proxy(moto, "checksums", monkeypatch, tmp_path) as running:
        yield running


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _requests(proxy: S3FaultProxy, key: str) -> list[str]:
    """The methods of the requests for `key`, in order."""
    path = f"/{proxy.bucket}/{key}"  # type: ignore[attr-defined]
    return [method for method, seen in proxy.faults.seen if seen == path]


def test_without_read_back_a_put_carries_the_sha256_and_is_not_read_again(proxy):
    store = S3Store(proxy.bucket)
    proxy.faults.check_sha256 = True
    data = b"Subject: kept on the server\r\n\r\nno DELE follows\r\n"
    key = raw_key(_sha(data))

    assert put_verified(store, key, io.BytesIO(data), _sha(data), len(data), read_back=False)

    # The look for an existing copy (404), then the PUT; no GET after it.
    assert _requests(proxy, key) == ["GET", "PUT"]
    assert proxy.faults.put_checksums == [_b64(data)]
    assert store.get(key) == data


def test_with_read_back_the_object_is_read_again_after_the_checked_put(proxy):
    store = S3Store(proxy.bucket)
    data = b"Subject: a DELE follows\r\n\r\nread back first\r\n"
    key = raw_key(_sha(data))

    assert put_verified(store, key, io.BytesIO(data), _sha(data), len(data))

    assert _requests(proxy, key) == ["GET", "PUT", "GET"]
    assert proxy.faults.put_checksums == [_b64(data)]


def test_the_server_refuses_bytes_that_do_not_hash_to_the_checksum(proxy):
    store = S3Store(proxy.bucket)
    proxy.faults.check_sha256 = True
    proxy.faults.corrupt_puts = True  # a byte flipped on the way, after the client hashed
    data = b"Subject: flipped in transit\r\n\r\nbody\r\n"
    key = raw_key(_sha(data))

    with pytest.raises(StoreError, match="BadDigest") as refused:
        put_verified(store, key, io.BytesIO(data), _sha(data), len(data), read_back=False)

    assert key in str(refused.value) and is_transient(refused.value)  # worth retrying
    assert not store.exists(key)
    proxy.faults.corrupt_puts = False
    assert put_verified(store, key, io.BytesIO(data), _sha(data), len(data), read_back=False)
    assert store.get(key) == data


def test_a_server_that_does_not_confirm_the_checksum_is_read_back_all_the_same(proxy):
    """A store that ignores x-amz-checksum-sha256 answers without it: no proof, so the
    object is read back even where no DELE depends on it, and damage is caught."""
    store = S3Store(proxy.bucket)
    proxy.faults.strip_checksums = True
    data = b"Subject: unconfirmed\r\n\r\nbody\r\n"
    key = raw_key(_sha(data))
    assert put_verified(store, key, io.BytesIO(data), _sha(data), len(data), read_back=False)
    assert _requests(proxy, key) == ["GET", "PUT", "GET"]

    proxy.faults.corrupt_puts = True
    other = b"Subject: unconfirmed and damaged\r\n\r\nbody\r\n"
    with pytest.raises(IntegrityError, match=_sha(other)):
        put_verified(
            store, raw_key(_sha(other)), io.BytesIO(other), _sha(other), len(other), read_back=False
        )


@pytest.mark.parametrize("delete", [False, True])
def test_the_archiver_reads_originals_back_only_when_it_deletes(
    proxy, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch, delete: bool
):
    proxy.faults.check_sha256 = True
    store = S3Store(proxy.bucket)
    csv = f"a,b\r\n1,{delete}\r\n".encode()
    raw = make_message(f"delete={delete}", attachments=(("r.csv", csv, "text/csv"),))
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    with FakePop3Server({"box": FakeMailbox("secret", [raw])}) as server:
        result = archiver.run(fake_box(monkeypatch, server, "box", delete_after_archive=delete))
        deles = [command for _, command in server.commands if command.startswith("DELE")]

    assert result.archived == 1 and result.deleted == int(delete)
    assert deles == (["DELE 1"] if delete else [])
    # The original: read back after its PUT exactly when a DELE depends on it.
    assert _requests(proxy, raw_key(_sha(raw))) == (
        ["GET", "PUT", "GET"] if delete else ["GET", "PUT"]
    )
    # An attachment never carries a DELE: the server's check stands in for the read-back.
    assert _requests(proxy, part_key(_sha(csv))) == ["GET", "PUT"]
    assert set(proxy.faults.put_checksums) == {_b64(raw), _b64(csv)}
    assert store.get(raw_key(_sha(raw))) == raw and store.get(part_key(_sha(csv))) == csv
