"""Commands against a real archive: `cat` by a unique prefix of the SHA-256, `search` ids,
the schema check that spares start-up an Alembic import."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from archive.app.cli import app
from archive.pipeline.archiver import Archiver
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore, raw_key
from tests.support.mail import fake_box, make_message


@pytest.fixture
def seventeen(archiver: Archiver, fresh_db_url: str, local_store: LocalStore, monkeypatch):
    """17 archived messages: two of them share a first hex digit, whatever the hashes are."""
    mails = [make_message(f"message {i}", body=f"body number {i}") for i in range(17)]
    with FakePop3Server({"ann": FakeMailbox("secret", mails)}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", local_store.root.as_uri())
    return {hashlib.sha256(m).hexdigest(): m for m in mails}


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cat_takes_a_unique_prefix_and_still_verifies(seventeen, local_store: LocalStore):
    digest, original = next(iter(seventeen.items()))
    good = _cli("cat", digest[:12].upper())
    assert good.exit_code == 0 and good.stdout_bytes == original
    (local_store.root / raw_key(digest)).write_bytes(original + b"tampered")
    bad = _cli("cat", digest[:12])
    assert bad.exit_code == 1 and bad.stdout_bytes == b"" and digest in bad.stderr


def test_an_ambiguous_or_unknown_prefix_is_an_error(seventeen, monkeypatch):
    monkeypatch.setattr("archive.app.store_commands.MIN_PREFIX", 1)
    shared, _ = Counter(d[0] for d in seventeen).most_common(1)[0]
    ambiguous = _cli("cat", shared)
    assert ambiguous.exit_code == 1 and ambiguous.stdout_bytes == b""
    assert f"prefix {shared} is ambiguous" in ambiguous.stderr
    assert sum(d in ambiguous.stderr for d in seventeen if d.startswith(shared)) == 2
    unused = next(p for p in (f"{i:04x}" for i in range(1 << 16)) if not any(
        d.startswith(p) for d in seventeen))  # fmt: skip
    unknown = _cli("cat", unused)
    assert unknown.exit_code == 1 and "no archived message" in unknown.stderr


def test_search_shows_the_id_cat_takes(seventeen):
    found = _cli("search", "number", "-n", "50")
    assert found.exit_code == 0, found.output
    shown = [d for d in seventeen if d[:12] in found.stdout]
    assert len(shown) == 17
    assert "**" not in found.stdout  # not a terminal: the highlight marks are dropped


def test_the_schema_check_sees_a_current_and_an_empty_database(fresh_engine: Engine, databases):
    import migrations
    from archive.index.database import make_engine

    assert migrations.is_current(fresh_engine)
    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE mailarchive.alembic_version SET version_num = '0005'"))
    assert not migrations.is_current(fresh_engine)
    from tests.support.postgres import _admin_engine, with_database

    name = f"{databases.prefix}_unmigrated"
    admin = _admin_engine(databases.admin)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    empty_url = with_database(databases.admin, name)
    empty = make_engine(empty_url, pool_size=1)
    try:
        assert not migrations.is_current(empty)
        migrations.ensure_current(empty_url, empty)
        assert migrations.is_current(empty)
    finally:
        empty.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def test_status_counts_each_mailbox_and_the_archive(seventeen):
    import json

    result = _cli("status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (ann,) = report["mailboxes"]
    assert ann["name"] == "ann" and ann["messages"] == 17 and ann["deleted_on_server"] == 0
    assert ann["bytes"] == sum(len(m) for m in seventeen.values())
    assert ann["last_login_at"] is not None and ann["last_archived_at"] is not None
    assert report["archive"]["originals"] == 17
    assert report["archive"]["original_bytes"] == ann["bytes"]


def test_search_reaches_the_database_without_sqlalchemy_or_alembic(seventeen, fresh_engine):
    """`search` goes through libpq alone (start-up time): neither SQLAlchemy (its ORM, the
    engine), nor Alembic, nor Prefect or boto3 is imported, and the hits are there."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from archive.app.cli import main\n"
        "sys.argv = ['mailarchive', 'search', '--json', 'number']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json

    assert json.loads(done.stdout)["total"] == 17
    loaded = set(done.stderr.split())
    assert "psycopg" in loaded  # the probe saw the database used
    assert loaded & {"sqlalchemy", "alembic", "prefect", "boto3", "botocore", "bs4"} == set()
    # The audit trail names the OS user of a libpq search, as of any other.
    import getpass

    with fresh_engine.connect() as conn:
        users = conn.execute(
            text("SELECT os_user FROM mailarchive.audit_log WHERE action = 'search'")
        ).scalars()
        assert list(users) == [getpass.getuser()]


def test_a_hold_says_what_it_holds_and_that_an_empty_query_hold_stays_empty(seventeen):
    one = _cli("hold", "create", "one", "--reason", "r", "--message", next(iter(seventeen)))
    assert one.exit_code == 0 and one.stdout.strip() == "hold one placed: 1 message"
    none = _cli("hold", "create", "none", "--reason", "r", "--query", "nosuchword")
    assert none.exit_code == 0, none.output
    assert none.stdout.strip() == (
        "hold none placed: 0 messages; the query matches nothing now and mail archived "
        "later is not added"
    )
