"""archive.extract in the test process: each format's reader, statuses, and the ZIP bounds.

The documents are built here with the libraries that write each format
(tests/support/documents.py); the worker pool and its time limit are tested in
tests/integration/test_extract_pool.py (it needs processes and a local socket).
"""

from __future__ import annotations

import pytest

from archive.extract import Extraction, ExtractLimits, Extractor, Status, extract_document
from archive.extract.sniff import Kind, detect, has_reader
from tests.support import documents as d

LIMITS = ExtractLimits()


def _extract(data: bytes, content_type: str = "application/octet-stream", name: str | None = None):
    return extract_document(data, content_type, name, LIMITS)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: d.pdf("Invoice zebracorn", "second line"), ["zebracorn", "second line"]),
        (
            lambda: d.docx_file("para wombat", "cellwallaby", "headerbilby"),
            ["wombat", "cellwallaby", "headerbilby"],
        ),
        (
            lambda: d.pptx_file("Title quokka", "notes numbat"),
            ["quokka", "second bullet", "numbat"],
        ),
        (lambda: d.odt_file("Heading", "para platypus"), ["Heading", "platypus"]),
        (lambda: d.ods_file("echidna"), ["Total", "echidna"]),
        (lambda: d.odp_file("dingo"), ["dingo"]),
        (lambda: d.rtf_file("kookaburra"), ["kookaburra", "café crème"]),
        (lambda: b"<p>Hello <b>bandicoot</b></p><script>no()</script>", ["bandicoot"]),
    ],
    ids=["pdf", "docx", "pptx", "odt", "ods", "odp", "rtf", "html"],
)
def test_each_format_gives_its_words(build, words):
    name = "file.html" if b"<p>" in (data := build()) else None
    result = _extract(data, name=name)
    assert result.status is Status.OK, result.detail
    for word in words:
        assert word in result.text
    assert "no()" not in result.text


def test_spreadsheet_numbers_and_dates_read_as_a_person_sees_them():
    result = _extract(d.xlsx_file("Acme Corp"))
    assert result.status is Status.OK
    lines = result.text.splitlines()
    assert "1001\t1234.5\t2026-03-31\tAcme Corp" in lines
    assert "1002\t99\t2026-04-01 09:30:00\tGlobex" in lines
    assert "Notes" in lines and "second sheet note" in lines  # every sheet


def test_multi_column_pdf_keeps_each_column_in_reading_order():
    left = ["alpha bravo charlie", "delta echo foxtrot"]
    right = ["xray yankee zulu", "kilo lima mike"]
    text = _extract(d.pdf_two_columns(left, right)).text
    assert [line for line in text.splitlines() if line] == left + right


def test_password_protected_documents_are_encrypted_not_failed():
    for data in (d.pdf_encrypted("hidden words"), d.docx_encrypted("hidden words")):
        result = _extract(data)
        assert (result.status, result.text) == (Status.ENCRYPTED, "")
        assert "encrypt" in (result.detail or "") or "password" in (result.detail or "")


def test_scanned_pdf_has_no_text_and_says_ocr_is_not_done():
    result = _extract(d.pdf_scanned(), "application/pdf")
    assert result.status is Status.NO_TEXT
    assert "OCR" in (result.detail or "")


def test_unsupported_and_damaged_files():
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    assert _extract(png, "image/png", "a.png").status is Status.UNSUPPORTED
    legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    assert _extract(legacy, name="old.doc").status is Status.UNSUPPORTED
    # Named as text, but binary: not indexed as text.
    assert _extract(bytes(1000), name="zeros.txt").status is Status.UNSUPPORTED
    broken = _extract(b"%PDF-1.4\n1 0 obj garbage", "application/pdf")
    assert broken.status is Status.FAILED
    assert broken.detail and broken.detail.startswith("pdf: ")
    cut_docx = d.docx_file("x")[:2000]
    assert _extract(cut_docx, name="cut.docx").status is Status.FAILED


def test_sniffing_trusts_bytes_over_the_label():
    assert detect(d.pdf("x"), "application/octet-stream", "scan.jpg") is Kind.PDF
    assert detect(d.xlsx_file("x"), "application/zip", None) is Kind.XLSX
    assert detect(d.odt_file("a", "b"), "application/octet-stream", None) is Kind.ODF
    assert detect(b"plain words", "application/octet-stream", "notes.TXT") is Kind.TEXT


def test_zip_members_are_read_with_their_names():
    data = d.zip_file({"report.docx": d.docx_file("zipped wallaby"), "notes.txt": b"numbat"})
    result = _extract(data, "application/zip", "bundle.zip")
    assert result.status is Status.OK
    assert ["report.docx", "Quarterly report", "zipped wallaby", "notes.txt", "numbat"] == (
        result.text.splitlines()
    )


def test_nested_zip_stops_at_the_depth_limit():
    data = d.zip_nested({"deep.txt": b"deepword"}, depth=LIMITS.max_zip_depth + 2)
    result = _extract(data)
    assert result.status is Status.TRUNCATED
    assert "deeper than 3" in (result.detail or "")
    assert "deepword" not in result.text
    shallow = _extract(d.zip_nested({"deep.txt": b"deepword"}, depth=LIMITS.max_zip_depth))
    assert (shallow.status, shallow.text.splitlines()[-1]) == (Status.OK, "deepword")


def test_zip_bomb_stops_at_the_unpacked_limit():
    limits = ExtractLimits(max_unpacked_bytes=3 << 20, max_input_bytes=2 << 20)
    result = extract_document(d.zip_bomb(unpacked=8 << 20, members=3), "", "b.zip", limits)
    assert result.status is Status.TRUNCATED
    assert "zeros0.txt: unpacked past the size limit" in (result.detail or "")


def test_zip_member_count_is_bounded_over_all_levels():
    limits = ExtractLimits(max_zip_members=5)
    inner = d.zip_file({f"in{n}.txt": b"w%d" % n for n in range(4)})
    data = d.zip_file({"a.zip": inner, "b.zip": inner})
    result = extract_document(data, "", None, limits)
    assert result.status is Status.TRUNCATED
    assert "only 5 ZIP members read" in (result.detail or "")


def test_office_container_declaring_a_huge_unpacked_size_is_not_opened():
    limits = ExtractLimits(max_unpacked_bytes=1 << 20)
    bomb = d.zip_file({"[Content_Types].xml": b"<x/>", "word/document.xml": bytes(2 << 20)})
    result = extract_document(bomb, "", "bomb.docx", limits)
    assert result.status is Status.FAILED
    assert "unpacks to" in (result.detail or "")


def test_long_text_is_truncated_at_max_chars():
    limits = ExtractLimits(max_chars=1000)
    result = extract_document(("word " * 1000).encode(), "text/plain", None, limits)
    assert result.status is Status.TRUNCATED
    assert len(result.text) <= 1000 and result.text.startswith("word word")


def test_oversized_input_is_refused_before_reading():
    limits = ExtractLimits(max_input_bytes=100)
    result = extract_document(b"x" * 101, "text/plain", None, limits)
    assert result == Extraction(Status.FAILED, "", "101 bytes, over the limit of 100")


def test_bytes_no_reader_takes_are_answered_without_a_worker():
    # Images, executables and random bytes: the pool answers what a worker would, and
    # starts none (a worker costs a process and the attachment's bytes over a socket).
    pool = Extractor(ExtractLimits(), workers=1)
    try:
        for data, content_type, name in [
            (b"\x89PNG\r\n\x1a\n" + bytes(2000), "image/png", "a.png"),
            (bytes(range(256)) * 40, "application/zip", "archive1.zip"),
            (b"MZ\x90\x00" + bytes(500), "application/octet-stream", None),
        ]:
            assert not has_reader(data, content_type, name)
            answer = pool.extract(data, content_type, name)
            assert answer == extract_document(data, content_type, name, ExtractLimits())
            assert answer.status is Status.UNSUPPORTED
        assert list(pool._idle.queue) == [None]  # no worker was started
    finally:
        pool.close()


def test_has_reader_for_everything_a_reader_takes():
    for data, content_type, name in [
        (d.pdf("x"), "application/octet-stream", "scan.jpg"),
        (d.docx_file("a"), "application/octet-stream", None),
        (b"PK\x03\x04 damaged zip", "application/octet-stream", None),
        (b"{\\rtf1 text}", "application/octet-stream", None),
        (b"words", "text/csv", None),
        (b"words", "application/octet-stream", "notes.txt"),
        (b"<p>x</p>", "application/xhtml+xml", None),
    ]:
        assert has_reader(data, content_type, name), (content_type, name)
