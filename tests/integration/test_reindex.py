"""`reindex`: parsing the stored originals again reproduces the same index rows."""

from __future__ import annotations

import hashlib
import io

from sqlalchemy import Engine, text
from typer.testing import CliRunner

from archive.mime import PARSER_VERSION, ParseLimits, parse_message
from archive.pipeline.reindex import mark_all_stale, reindex, stale_count
from archive.store import MemoryStore, part_key, raw_key
from tests.support import archive_data

# Everything derived from parsing, without surrogate keys and timestamps.
SNAPSHOT = {
    "message": "SELECT sha256, size, message_id, in_reply_to, reference_ids, subject, sent_at, "
    "has_attachments, md5(body_text), part_count, thread_id, thread_subject, "
    "parser_version, extract_version, attachment_names, search::text "
    "FROM mailarchive.message ORDER BY sha256",
    "address": "SELECT m.sha256, a.ordinal, a.role, a.name, a.address FROM mailarchive.address a "
    "JOIN mailarchive.message m ON m.id = a.message_id ORDER BY 1, 2",
    "attachment": "SELECT m.sha256, a.ordinal, a.part_path, a.filename, a.content_type, "
    "a.disposition, a.content_id, a.size, a.sha256, a.text_status, a.text_detail "
    "FROM mailarchive.attachment a "
    "JOIN mailarchive.message m ON m.id = a.message_id ORDER BY 1, 2",
    "header": "SELECT m.sha256, h.ordinal, h.part_path, h.name, h.value "
    "FROM mailarchive.header_field h "
    "JOIN mailarchive.message m ON m.id = h.message_id ORDER BY 1, 2",
    "defect": "SELECT m.sha256, d.ordinal, d.kind, d.part_path, d.detail "
    "FROM mailarchive.defect d JOIN mailarchive.message m ON m.id = d.message_id ORDER BY 1, 2",
    "chunk": "SELECT m.sha256, c.ordinal, c.part_path, c.start_char, md5(c.content), "
    "md5(c.search::text) FROM mailarchive.text_chunk c "
    "JOIN mailarchive.message m ON m.id = c.message_id ORDER BY 1, 2",
    "delivery": "SELECT d.uidl, m.sha256 FROM mailarchive.delivery d "
    "JOIN mailarchive.message m ON m.id = d.message_id ORDER BY 1",
}


def _snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in SNAPSHOT.items()}


# Without the 5 MB message, which costs seconds to index and adds nothing to resuming.
SMALL = tuple(mail for mail in archive_data.MAILS if mail.uidl != "a1")


def _loaded(
    engine: Engine, mails: tuple[archive_data.Mail, ...] = archive_data.MAILS
) -> MemoryStore:
    store = MemoryStore()
    for mail in mails:
        digest = hashlib.sha256(mail.raw).hexdigest()
        store.put(raw_key(digest), io.BytesIO(mail.raw), len(mail.raw))
    archive_data.load(engine, mails)
    return store


def test_reindex_reproduces_the_same_rows(fresh_engine: Engine):
    # Loaded through the archiver's one-statement writer (archive.index.writes), rewritten by
    # reindex a statement per table (archive.index.messages): both must give the same rows.
    store = _loaded(fresh_engine)
    before = _snapshot(fresh_engine)
    assert mark_all_stale(fresh_engine) == 12
    with fresh_engine.begin() as conn:  # what an older parser would have left behind
        conn.execute(text("DELETE FROM mailarchive.text_chunk"))
        conn.execute(text("DELETE FROM mailarchive.defect"))
        conn.execute(
            text(
                "INSERT INTO mailarchive.defect (message_id, ordinal, kind, detail) "
                "SELECT id, 0, 'legacy', 'part 1: something old' FROM mailarchive.message"
            )
        )
        conn.execute(text("UPDATE mailarchive.message SET thread_id = NULL, subject = 'old'"))
    result = reindex(fresh_engine, store, ParseLimits(), batch_size=5)
    assert (result.reindexed, result.failed, result.remaining) == (12, (), 0)
    assert _snapshot(fresh_engine) == before


def test_reindex_replaces_free_text_defects_with_typed_rows(fresh_engine: Engine):
    raw = (
        b"From: a@example.com\r\nSubject: broken\r\nDate: yesterday\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="never"\r\n\r\n--other\r\n'
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0x*\r\n--other--\r\n"
    )
    digest = hashlib.sha256(raw).hexdigest()
    store = MemoryStore()
    store.put(raw_key(digest), io.BytesIO(raw), len(raw))
    archive_data.load(fresh_engine, (archive_data.Mail("sales", "x1", raw),))
    with fresh_engine.begin() as conn:  # as migration 0005 leaves a version-3 row
        conn.execute(text("DELETE FROM mailarchive.defect"))
        conn.execute(
            text(
                "INSERT INTO mailarchive.defect (message_id, ordinal, kind, part_path, detail) "
                "SELECT id, 0, 'legacy', NULL, 'something old' FROM mailarchive.message"
            )
        )
        conn.execute(text("UPDATE mailarchive.message SET parser_version = 3"))
    assert reindex(fresh_engine, store, ParseLimits()).reindexed == 1
    with fresh_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, part_path, detail FROM archive.defects ORDER BY ordinal")
        ).all()
    assert [tuple(row) for row in rows] == [
        (d.kind.value, d.part_path, d.detail) for d in parse_message(raw).defects
    ]
    assert {"bad_date", "missing_boundary", "bad_base64"} <= {row.kind for row in rows}


def test_reindex_resumes_and_reports_missing_originals(fresh_engine: Engine):
    store = _loaded(fresh_engine, SMALL)
    mark_all_stale(fresh_engine)
    first = reindex(fresh_engine, store, ParseLimits(), batch_size=2, max_messages=5)
    assert (first.reindexed, first.remaining) == (5, 6)
    with fresh_engine.connect() as conn:
        versions = conn.execute(
            text("SELECT parser_version, count(*) FROM mailarchive.message GROUP BY 1 ORDER BY 1")
        ).all()
    assert versions == [(0, 6), (PARSER_VERSION, 5)]
    lost = hashlib.sha256(archive_data.MAILS[-1].raw).hexdigest()
    del store._objects[raw_key(lost)]
    second = reindex(fresh_engine, store, ParseLimits(), batch_size=2)
    assert second.reindexed == 5 and second.remaining == 1
    assert second.failed == (f"{lost}: original not in memory://",)
    assert stale_count(fresh_engine) == 1


def test_cli_reindex(fresh_db_url: str, tmp_path, monkeypatch):
    from archive.app.cli import app
    from archive.index.database import make_engine
    from archive.store import LocalStore

    engine = make_engine(fresh_db_url, pool_size=1)
    store = LocalStore(tmp_path / "objects")
    for mail in archive_data.MAILS[:3]:
        digest = hashlib.sha256(mail.raw).hexdigest()
        store.put(raw_key(digest), io.BytesIO(mail.raw), len(mail.raw))
    archive_data.load(engine, archive_data.MAILS[:3])
    engine.dispose()
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", (tmp_path / "objects").as_uri())
    result = CliRunner().invoke(app, ["reindex", "--all", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "reindexed 3 messages, 0 left" in result.stdout


def test_reindex_stores_the_parts_it_finds(fresh_engine: Engine):
    # The store holds only the originals, as after an older parser that extracted nothing.
    store = _loaded(fresh_engine, SMALL)
    with fresh_engine.connect() as conn:
        parts = conn.execute(text("SELECT DISTINCT sha256 FROM mailarchive.attachment")).scalars()
        expected = set(parts)
    assert expected and not any(store.exists(part_key(sha)) for sha in expected)
    mark_all_stale(fresh_engine)
    reindex(fresh_engine, store, ParseLimits())
    for sha in expected:
        assert hashlib.sha256(store.get(part_key(sha))).hexdigest() == sha


def test_reindex_parses_huge_originals_by_header_only(fresh_engine: Engine):
    store = _loaded(fresh_engine, SMALL)
    mark_all_stale(fresh_engine)
    reindex(fresh_engine, store, ParseLimits(), max_bytes=300)
    with fresh_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.size, m.has_attachments, array_agg(d.kind ORDER BY d.ordinal) AS kinds "
                "FROM mailarchive.message m LEFT JOIN archive.defects d ON d.message_id = m.id "
                "GROUP BY m.id"
            )
        ).all()
    big = [r for r in rows if r.size > 300]
    assert big and all(r.kinds[-1] == "header_only" and not r.has_attachments for r in big)
    assert all("header_only" not in r.kinds for r in rows if r.size <= 300)
