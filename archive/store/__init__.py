"""Content-addressed object storage behind one small interface, `ObjectStore`.

`open_store(url)` picks the implementation; `put_verified` is the write path the archiver uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from archive.errors import ConfigError, ObjectNotFound
from archive.store.base import (
    ObjectStore,
    StoredObject,
    check_key,
    part_key,
    put_verified,
    raw_key,
    sha256_of_stream,
)
from archive.store.local import LocalStore
from archive.store.memory import MemoryStore
from archive.store.s3 import ObjectLock, S3Store
from archive.store.verified import (
    ObjectCheck,
    ObjectState,
    check_object,
    open_verified,
    read_verified,
    spool_verified,
)

__all__ = [
    "LocalStore",
    "MemoryStore",
    "ObjectCheck",
    "ObjectLock",
    "ObjectNotFound",
    "ObjectState",
    "ObjectStore",
    "S3Store",
    "StoredObject",
    "check_key",
    "check_object",
    "open_store",
    "open_verified",
    "part_key",
    "put_verified",
    "raw_key",
    "read_verified",
    "sha256_of_stream",
    "spool_verified",
]


def open_store(url: str, *, object_lock: ObjectLock | None = None) -> ObjectStore:
    """`file:///abs/path` or `/abs/path` → LocalStore, `s3://bucket[/prefix]` → S3Store,
    `memory://` → MemoryStore. Anything else is a ConfigError.

    Error messages name the scheme, never the whole URL: it might carry a password.
    `object_lock` applies to S3 only (a ConfigError elsewhere): originals are written locked.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if object_lock is not None and scheme != "s3":
        raise ConfigError("S3 Object Lock is set, but the store is not s3://: nothing could lock")
    if os.path.isabs(url):
        return LocalStore(Path(url))
    if scheme == "file":
        # file://localhost/x is the same as file:///x (RFC 8089 §2); file://host/x is not local.
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ConfigError("store URL: a file:// URL must be file:///absolute/path")
        path = url2pathname(parts.path)  # undoes the %20 of Path.as_uri()
        if not os.path.isabs(path):
            raise ConfigError("store URL: a file:// URL must be file:///absolute/path")
        return LocalStore(Path(path))
    if scheme == "s3":
        if "@" in parts.netloc:
            raise ConfigError(
                "store URL: credentials do not belong in an s3:// URL; "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
            )
        if not parts.netloc or ":" in parts.netloc or parts.query or parts.fragment:
            raise ConfigError(
                "store URL: expected s3://bucket or s3://bucket/prefix "
                "(the endpoint comes from AWS_ENDPOINT_URL)"
            )
        return S3Store(parts.netloc, parts.path.strip("/"), object_lock=object_lock)
    if scheme == "memory":
        return MemoryStore()
    problem = f"unsupported scheme {scheme + '://'!r}" if scheme else "a relative path"
    raise ConfigError(
        f"store URL: {problem}; use file:///absolute/path, s3://bucket[/prefix] or memory://"
    )
