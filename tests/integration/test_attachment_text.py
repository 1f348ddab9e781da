"""The text inside attachments, through the archiver and archive.search: found the moment
the message commits, a status per attachment, each distinct attachment extracted once, and
`reindex` extracting what was archived before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from archive.extract import Extraction, ExtractLimits, Extractor
from archive.index.ledger import IndexWriter
from archive.mime import ParseLimits
from archive.pipeline.archiver import Archiver
from archive.pipeline.reindex import reindex
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore
from tests.support import documents as d
from tests.support.mail import fake_box, make_message

PDF = "application/pdf"
OCTETS = "application/octet-stream"


class CountingExtractor(Extractor):
    """The real pool, counting the documents it was asked to read."""

    def __init__(self, limits: ExtractLimits) -> None:
        super().__init__(limits, workers=1)
        self.asked: list[str | None] = []

    def extract(self, data: bytes, content_type: str, filename: str | None) -> Extraction:
        self.asked.append(filename)
        return super().extract(data, content_type, filename)


@pytest.fixture(scope="module")
def extractor() -> Iterator[CountingExtractor]:
    # 2 s: the product's time limit, low enough that the hostile PDF (seconds of PDFium
    # work per 100 MB of content stream; 200 MB here) cannot finish.
    pool = CountingExtractor(ExtractLimits(seconds=2))
    yield pool
    pool.close()


def _archiver(engine: Engine, store: LocalStore, extractor: Extractor | None) -> Archiver:
    return Archiver(
        writer=IndexWriter(engine), store=store, default_timeout=10, extractor=extractor
    )


def _archive(archiver: Archiver, monkeypatch, messages: list[bytes], user: str = "ann"):
    with FakePop3Server({user: FakeMailbox("secret", messages)}) as server:
        return archiver.run(fake_box(monkeypatch, server, user))


def _found(engine: Engine, query: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT subject FROM archive.search(:q, 100)"), {"q": query})
        return sorted(row.subject for row in rows)


def _statuses(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT filename, text_status, text_detail FROM archive.attachments")
        )
        return {row.filename: (row.text_status, row.text_detail) for row in rows}


def test_words_only_inside_attachments_are_found_by_search(
    fresh_engine: Engine, local_store: LocalStore, extractor: CountingExtractor, monkeypatch
):
    messages = [
        make_message("the pdf", attachments=(("q3.pdf", d.pdf("Revenue zebracorn"), PDF),)),
        make_message(
            "the docx", attachments=(("memo.docx", d.docx_file("memo about wombats"), OCTETS),)
        ),
        make_message("the xlsx", attachments=(("books.xlsx", d.xlsx_file("Quokkaco"), OCTETS),)),
        make_message(
            "the zip",
            attachments=(
                ("bundle.zip", d.zip_file({"in.docx": d.docx_file("zipped bilby")}), OCTETS),
            ),
        ),
        make_message("nothing attached", body="zebracorn? never heard of it"),
    ]
    result = _archive(_archiver(fresh_engine, local_store, extractor), monkeypatch, messages)
    assert result.archived == 5
    assert _found(fresh_engine, "zebracorn revenue") == ["the pdf"]
    assert _found(fresh_engine, "wombats") == ["the docx"]
    assert _found(fresh_engine, "quokkaco") == ["the xlsx"]
    assert _found(fresh_engine, "2026-03-31") == ["the xlsx"]
    assert _found(fresh_engine, "bilby") == ["the zip"]
    assert set(_statuses(fresh_engine).values()) == {("ok", None)}


def test_statuses_for_encrypted_scanned_unsupported_and_hostile_attachments(
    fresh_engine: Engine, local_store: LocalStore, extractor: CountingExtractor, monkeypatch
):
    attachments = (
        ("locked.pdf", d.pdf_encrypted("hidden platypus"), PDF),
        ("locked.docx", d.docx_encrypted("hidden platypus"), OCTETS),
        ("scan.pdf", d.pdf_scanned(), PDF),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"),
        ("endless.pdf", d.pdf_hostile(200 << 20), PDF),
        ("deep.zip", d.zip_nested({"deep.txt": b"deepword"}, 6), "application/zip"),
    )
    messages = [
        make_message("hostile", attachments=attachments),
        make_message("after it", attachments=(("ok.pdf", d.pdf("dingo after"), PDF),)),
    ]
    result = _archive(_archiver(fresh_engine, local_store, extractor), monkeypatch, messages)
    assert result.archived == 2  # the run went on
    statuses = _statuses(fresh_engine)
    assert statuses["locked.pdf"] == ("encrypted", "PDF needs a password")
    assert statuses["locked.docx"] == ("encrypted", "Office document is encrypted")
    assert statuses["scan.pdf"] == ("no_text", "no text layer (a scan? OCR is not done)")
    assert statuses["photo.png"] == ("unsupported", "no text reader for unknown")
    # Whichever hard limit PDFium meets first, time or memory, the attachment fails alone.
    status, detail = statuses["endless.pdf"]
    assert status == "failed"
    assert detail in (
        "time limit of 2 s reached, extraction stopped",
        "extracting process killed by signal 6 (memory or CPU limit?)",
    ), detail
    assert statuses["deep.zip"][0] == "truncated"
    assert statuses["ok.pdf"] == ("ok", None)
    assert _found(fresh_engine, "platypus") == []
    assert _found(fresh_engine, "dingo") == ["after it"]


def test_each_distinct_attachment_is_extracted_once_across_mailboxes(
    fresh_engine: Engine, local_store: LocalStore, monkeypatch
):
    pool = CountingExtractor(ExtractLimits())
    try:
        shared = ("terms.pdf", d.pdf("terms of numbat service"), PDF)
        archiver = _archiver(fresh_engine, local_store, pool)
        _archive(archiver, monkeypatch, [make_message("first", attachments=(shared,))], "ann")
        _archive(
            archiver,
            monkeypatch,
            [
                make_message("second", attachments=(shared, ("again.pdf", shared[1], PDF))),
                make_message("third", attachments=(("other.pdf", d.pdf("other"), PDF),)),
            ],
            "bob",
        )
    finally:
        pool.close()
    assert pool.asked == ["terms.pdf", "other.pdf"]
    assert _found(fresh_engine, "numbat") == ["first", "second"]
    with fresh_engine.connect() as conn:
        cached = conn.execute(
            text("SELECT status, content FROM mailarchive.extracted_text ORDER BY content")
        ).all()
        per_row = conn.execute(
            text("SELECT count(*) FROM archive.attachments WHERE text_status = 'ok'")
        ).scalar()
    assert [tuple(row) for row in cached] == [("ok", "other"), ("ok", "terms of numbat service")]
    assert per_row == 4


def test_reindex_extracts_attachments_archived_before(
    fresh_engine: Engine, local_store: LocalStore, extractor: CountingExtractor, monkeypatch
):
    messages = [
        make_message("old pdf", attachments=(("old.pdf", d.pdf("archived echidna"), PDF),)),
        make_message("old text", attachments=(("notes.txt", b"plain kiwi", "text/plain"),)),
        make_message("no attachment"),
    ]
    _archive(_archiver(fresh_engine, local_store, None), monkeypatch, messages)
    assert _found(fresh_engine, "echidna") == []
    assert _statuses(fresh_engine) == {"old.pdf": (None, None), "notes.txt": (None, None)}

    assert reindex(fresh_engine, local_store, ParseLimits()).remaining == 0  # parser: current
    result = reindex(fresh_engine, local_store, ParseLimits(), extractor=extractor)
    assert (result.reindexed, result.failed, result.remaining) == (2, (), 0)
    assert _found(fresh_engine, "echidna") == ["old pdf"]
    assert _found(fresh_engine, "kiwi") == ["old text"]
    assert _statuses(fresh_engine) == {"old.pdf": ("ok", None), "notes.txt": ("ok", None)}
    again = reindex(fresh_engine, local_store, ParseLimits(), extractor=extractor)
    assert again.reindexed == 0
