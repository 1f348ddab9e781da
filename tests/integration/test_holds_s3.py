"""gc keeps a held message's objects on S3 too (moto's S3 server), and removes the rest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from archive.index import holds
from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver
from archive.pipeline.verify import collect_garbage
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import S3Store, raw_key
from tests.integration.test_store_s3 import BUCKET, moto_endpoint, s3_env  # noqa: F401
from tests.support.mail import fake_box, make_message


def test_gc_on_s3_keeps_held_originals(s3_env: str, fresh_engine: Engine, monkeypatch):  # noqa: F811
    store = S3Store(BUCKET, "holds")
    kept, dropped = make_message("held on s3"), make_message("not held")
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    with FakePop3Server({"ann": FakeMailbox("secret", [kept, dropped])}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    held_sha = hashlib.sha256(kept).hexdigest()
    with fresh_engine.begin() as conn:
        holds.create(conn, "s3-case", "subpoena", messages=[held_sha])
        # Every row removed behind the triggers' back (replica mode: triggers off).
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("DELETE FROM mailarchive.delivery"))
        conn.execute(text("DELETE FROM mailarchive.message"))
    report = collect_garbage(
        fresh_engine, store, apply=True, now=datetime.now(UTC) + timedelta(days=30)
    )
    assert report.removed == [raw_key(hashlib.sha256(dropped).hexdigest())]
    assert report.kept_held == 1
    assert store.get(raw_key(held_sha)) == kept
