"""`mailarchive import` and `mailarchive export` as a user runs them, and an export to S3
(moto's server), read back from the bucket and checked as a BagIt bag."""

from __future__ import annotations

import csv
import io
import mailbox
import re
from pathlib import Path

import boto3
from typer.testing import CliRunner

from archive.index.ledger import IndexWriter
from archive.pipeline.export import ExportRequest, export
from archive.pipeline.importer import Importer
from tests.integration.test_store_s3 import moto_endpoint, s3_env  # noqa: F401 (fixtures)
from tests.integration.test_transfer import MAILS, write_mbox
from tests.support.memory import sha
from tests.support.streams import BUCKET


def test_cli_import_then_export(fresh_db_url, tmp_path, monkeypatch):
    from archive.app.cli import app

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", (tmp_path / "objects").as_uri())
    runner = CliRunner()
    source = write_mbox(tmp_path / "in.mbox", MAILS)
    first = runner.invoke(app, ["import", "mbox", str(source), "--mailbox", "legacy"])
    assert first.exit_code == 0, first.output
    assert "imported 5 new messages into mailbox 'legacy'" in first.output
    again = runner.invoke(app, ["import", "mbox", str(source), "--mailbox", "legacy"])
    assert "imported 0 new messages" in again.output and "5 imported before" in again.output

    out = tmp_path / "export"
    done = runner.invoke(
        app, ["export", "subject:transfer", "--out", str(out), "--since", "2026-03-04"]
    )
    assert done.exit_code == 0, done.output
    assert "exported 2 of 2 messages" in done.output
    box = mailbox.mbox(str(out / "messages.mbox"), create=False)
    got = [re.sub(rb"(?m)^>(>*From )", rb"\1", box.get_bytes(k)) for k in box.keys()]
    assert got == [MAILS[4], MAILS[3]]

    bad = runner.invoke(app, ["export", "", "--out", str(tmp_path / "x"), "--format", "tar"])
    assert bad.exit_code == 2 and "--format 'tar'" in bad.output
    query = runner.invoke(app, ["export", "before:soon", "--out", str(tmp_path / "x")])
    assert query.exit_code == 2 and "search query:" in query.output
    (tmp_path / "objects" / "raw").chmod(0o755)
    victim = next((tmp_path / "objects" / "raw").rglob(f"{sha(MAILS[0])}*"))
    victim.chmod(0o644)
    victim.write_bytes(b"rotten")
    damaged = runner.invoke(app, ["export", "", "--out", str(tmp_path / "y")])
    assert damaged.exit_code == 1 and sha(MAILS[0]) in damaged.output


def test_export_to_s3_as_a_bag(s3_env, fresh_engine, local_store, tmp_path):  # noqa: F811
    import bagit

    Importer(IndexWriter(fresh_engine), local_store).run(
        "mbox", write_mbox(tmp_path / "in.mbox", MAILS), "old"
    )
    result = export(
        fresh_engine,
        local_store,
        ExportRequest(query="", out=f"s3://{BUCKET}/case-17", format="eml-zip", bagit=True),
    )
    assert result.exported == 5
    client = boto3.session.Session().client("s3", endpoint_url=s3_env)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="case-17/")["Contents"]]
    assert "case-17/data/messages.zip" in keys and "case-17/manifest-sha256.txt" in keys
    # Download it the way a recipient would, and check it with bagit.
    bag_dir = tmp_path / "download"
    for key in keys:
        target = bag_dir / key.removeprefix("case-17/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    bagit.Bag(str(bag_dir)).validate()
    with (bag_dir / "data" / "manifest.csv").open(newline="") as file:
        assert [r["sha256"] for r in csv.DictReader(file)] == [sha(r) for r in reversed(MAILS)]
    import zipfile

    with zipfile.ZipFile(io.BytesIO((bag_dir / "data" / "messages.zip").read_bytes())) as zipped:
        assert [zipped.read(n) for n in zipped.namelist()] == list(reversed(MAILS))
    assert isinstance(bag_dir, Path)
