"""Objects in an S3 bucket (AWS, MinIO, or any S3-compatible server)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, BinaryIO, Literal
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from archive.errors import ObjectNotFound, StoreError
from archive.store.base import StoredObject, check_key

# Endpoint variables that boto3 >= 1.28 reads by itself; we only look at them to pick
# path-style addressing, which MinIO and most self-hosted servers need.
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True, slots=True)
class ObjectLock:
    """S3 Object Lock for originals: each `raw/` object is written with `mode` (GOVERNANCE:
    users with s3:BypassGovernanceRetention may still delete; COMPLIANCE: nobody, not even
    the account root, until the date) and a retain-until date `days` after the write.
    The bucket must have Object Lock enabled (which turns versioning on)."""

    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int

    def __post_init__(self) -> None:
        if self.mode not in ("GOVERNANCE", "COMPLIANCE") or self.days < 1:
            raise ValueError(
                f"object lock: mode GOVERNANCE or COMPLIANCE and days >= 1, not {self}"
            )

    def upload_args(self, now: datetime) -> dict[str, object]:
        return {
            "ObjectLockMode": self.mode,
            "ObjectLockRetainUntilDate": now + timedelta(days=self.days),
        }


class S3Store:
    """`s3://bucket/prefix/<key>`. Credentials, region and endpoint come from the AWS_* variables.

    `client` replaces the boto3 client built from the environment (tests, custom sessions).
    `object_lock`: originals (`raw/` keys) are written locked (S3 Object Lock); parts and
    everything else are not.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,  # boto3 ships no types; a botocore S3 client
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 5,
        object_lock: ObjectLock | None = None,
    ) -> None:
        self.bucket = bucket
        self.object_lock = object_lock
        self.prefix = prefix.strip("/")
        if client is None:
            client = _client_from_environment(connect_timeout, read_timeout, max_attempts)
        self._client = client
        # Threads per multipart upload; several mailboxes upload at once already.
        self._transfer = TransferConfig(max_concurrency=4)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        endpoint = _display_endpoint(getattr(client.meta, "endpoint_url", None))
        if endpoint is not None:
            self.url += f" (endpoint {endpoint})"

    def _full_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        # An S3 PUT, and the CompleteMultipartUpload above the multipart threshold (8 MiB),
        # publish the object at once: readers never see part of it. `size` is not checked
        # here; put_verified reads the object back.
        try:
            # s3transfer closes the file object it is given; the caller still needs `src`.
            self._client.upload_fileobj(
                _NonClosing(src),
                self.bucket,
                self._full_key(key),
                ExtraArgs=self._lock_args(key) or None,
                Config=self._transfer,
            )
        except (ClientError, BotoCoreError, S3UploadFailedError, OSError) as exc:
            raise self._error("write", key, exc) from exc

    def put_checked(self, key: str, src: IO[bytes], size: int, sha256: str) -> bool:
        """`put` with the x-amz-checksum-sha256 header (base64 of the digest): S3 computes the
        SHA-256 of the bytes it receives and refuses others (400 BadDigest, a StoreError), so
        a stored object holds exactly those bytes. True when the answer confirms the checksum
        (a server that ignores the header does not echo it); False for an object above the
        multipart threshold (8 MiB), uploaded in parts by `put`, whose whole-object SHA-256
        S3 cannot check: read it back to know."""
        if size > self._transfer.multipart_threshold:
            self.put(key, src, size)
            return False
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode("ascii")
        try:
            response = self._client.put_object(
                Bucket=self.bucket,
                Key=self._full_key(key),
                Body=_NonClosing(src),
                # The algorithm too: Object Lock needs a checksum header named
                # (x-amz-sdk-checksum-algorithm) or Content-MD5, and the value given is used.
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
                **self._lock_args(key),
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("write", key, exc) from exc
        return bool(response.get("ChecksumSHA256") == checksum)

    def _lock_args(self, key: str) -> dict[str, object]:
        if self.object_lock is None or not key.startswith("raw/"):
            return {}
        return self.object_lock.upload_args(datetime.now(UTC))

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._full_key(key))
        except ClientError as exc:
            if _is_not_found(exc):
                return False
            raise self._error("check", key, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error("check", key, exc) from exc
        return True

    def open(self, key: str) -> BinaryIO:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._full_key(key))
        except ClientError as exc:
            if _is_not_found(exc):
                raise ObjectNotFound(key, self.url) from None
            raise self._error("read", key, exc) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._error("read", key, exc) from exc
        return io.BufferedReader(_Body(response["Body"], self, key), buffer_size=1 << 16)

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def scan(self, prefix: str) -> Iterator[StoredObject]:
        full = (
            self._full_key(prefix.rstrip("/")) + "/"
            if prefix.strip("/")
            else (f"{self.prefix}/" if self.prefix else "")
        )
        strip = len(f"{self.prefix}/") if self.prefix else 0
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"][strip:], item["Size"], item["LastModified"])
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("list", prefix, exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._full_key(key))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error("delete", key, exc) from exc

    def _error(self, verb: str, key: str, exc: BaseException) -> StoreError:
        return StoreError(f"{self.url}: cannot {verb} {key}: {_describe(exc)}")


class _Body(io.RawIOBase):
    """A StreamingBody as a file, so a dropped connection mid-read is a StoreError too."""

    def __init__(self, body: Any, store: S3Store, key: str) -> None:
        self._body = body
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data: bytes = self._body.read(len(view))
        except (BotoCoreError, OSError) as exc:
            raise self._store._error("read", self._key, exc) from exc
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _client_from_environment(connect_timeout: float, read_timeout: float, max_attempts: int) -> Any:
    s3_options = {"addressing_style": "path"} if _endpoint_from_environment() else None
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # total_max_attempts counts the first try; botocore's "max_attempts" key counts only
        # retries (so 5 would mean 6 requests), unlike AWS_MAX_ATTEMPTS.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        s3=s3_options,
    )
    # A session of its own: it reads the environment now, and boto3's default session is not
    # safe to share between the threads that archive mailboxes in parallel.
    return boto3.session.Session().client("s3", config=config)


def _endpoint_from_environment() -> str | None:
    for name in _ENDPOINT_VARIABLES:
        if value := os.environ.get(name):
            return value
    return None


def _display_endpoint(endpoint_url: str | None) -> str | None:
    """scheme://host:port of a custom endpoint, without any user:password@; None for AWS."""
    if not endpoint_url:
        return None
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def _is_not_found(exc: Any) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in _NOT_FOUND or status == 404


def _describe(exc: BaseException) -> str:
    """A short reason built only from the error code and message, with secrets blanked."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    else:
        text = f"{type(exc).__name__}: {exc}"
    # botocore does not put credentials in its messages; this keeps it so if that changes.
    for name in _SECRET_VARIABLES:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class _NonClosing(io.RawIOBase):
    """A read-only view of a file object whose close() leaves the underlying file open."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._inner.seekable()

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()
