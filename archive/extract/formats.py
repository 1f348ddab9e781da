"""One reader per format: bytes in, `Extraction` out; each runs inside a worker process
(archive.extract.pool), so a library that loops or allocates without bound is killed there.

Libraries (chosen by measurement, docs/benchmarks.md): pypdfium2 for PDF, python-docx,
openpyxl, python-pptx, odfpy, striprtf, and the mail parser's own HTML-to-text
(beautifulsoup4). A reader returns the text it found; `extract_kind` turns that into a
status (no text, truncated) the same way for every format.
"""

from __future__ import annotations

import codecs
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, time

import charset_normalizer

from archive.extract.model import Extraction, ExtractLimits, Status
from archive.extract.sniff import Kind
from archive.mime.htmltext import html_to_text, meta_charset

# The HTML reader's tag budget per document: what a mail body gets (archive.mime.text).
_HTML_TAGS = 200_000


class _Encrypted(Exception):
    """The document needs a password."""


class _Cut(Exception):
    """A reader stopped at a limit; `text` is what it had."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(why)
        self.text = text


def _join(pieces: Iterator[str], limits: ExtractLimits) -> str:
    """Join non-empty pieces by newlines, raising _Cut once `max_chars` is passed."""
    out: list[str] = []
    total = 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        out.append(piece)
        total += len(piece) + 1
        if total > limits.max_chars:
            raise _Cut("\n".join(out), f"text cut at {limits.max_chars} characters")
    return "\n".join(out)


def read_pdf(data: bytes, limits: ExtractLimits) -> str:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise _Encrypted("PDF needs a password") from exc
        raise
    try:
        pages = len(pdf)

        def texts() -> Iterator[str]:
            for number in range(min(pages, limits.max_pages)):
                page = pdf[number]
                textpage = page.get_textpage()
                try:
                    # PDFium ends lines with CRLF.
                    yield textpage.get_text_range().replace("\r\n", "\n")
                finally:
                    textpage.close()
                    page.close()

        text = _join(texts(), limits)
        if pages > limits.max_pages:
            raise _Cut(text, f"only the first {limits.max_pages} of {pages} pages read")
        return text
    finally:
        pdf.close()


def read_docx(data: bytes, limits: ExtractLimits) -> str:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))

    def table_text(table: Table) -> Iterator[str]:
        for row in table.rows:
            yield "\t".join(cell.text for cell in row.cells)

    def texts() -> Iterator[str]:
        for section in document.sections:
            for part in (section.header, section.footer):
                if not part.is_linked_to_previous:
                    yield from (p.text for p in part.paragraphs)
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                yield from table_text(item)
            else:
                yield item.text

    return _join(texts(), limits)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_xlsx(data: bytes, limits: ExtractLimits) -> str:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)

    def texts() -> Iterator[str]:
        for sheet in book.worksheets:
            yield sheet.title
            for row in sheet.iter_rows(values_only=True):
                yield "\t".join(_cell(v) for v in row).rstrip()

    try:
        return _join(texts(), limits)
    finally:
        book.close()


def read_pptx(data: bytes, limits: ExtractLimits) -> str:
    import pptx
    from pptx.shapes.base import BaseShape
    from pptx.shapes.group import GroupShape

    deck = pptx.Presentation(io.BytesIO(data))

    def shape_texts(shape: BaseShape) -> Iterator[str]:
        if isinstance(shape, GroupShape):
            for inner in shape.shapes:
                yield from shape_texts(inner)
        if getattr(shape, "has_text_frame", False):
            yield shape.text_frame.text  # type: ignore[attr-defined]
        if getattr(shape, "has_table", False):
            for row in shape.table.rows:  # type: ignore[attr-defined]
                yield "\t".join(cell.text for cell in row.cells)

    def texts() -> Iterator[str]:
        for slide in deck.slides:
            for shape in slide.shapes:
                yield from shape_texts(shape)
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                yield slide.notes_slide.notes_text_frame.text

    return _join(texts(), limits)


def read_odf(data: bytes, limits: ExtractLimits) -> str:
    from odf import teletype
    from odf.namespaces import TEXTNS
    from odf.opendocument import load

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # ODF 1.2 §3.4: encrypted entries carry <manifest:encryption-data>.
        if b"encryption-data" in archive.read("META-INF/manifest.xml"):
            raise _Encrypted("OpenDocument file is encrypted")
    document = load(io.BytesIO(data))
    blocks = {(TEXTNS, "p"), (TEXTNS, "h")}

    def texts() -> Iterator[str]:
        # Depth-first in document order, iteratively: nesting depth is the sender's choice.
        stack = [document.body]
        while stack:
            node = stack.pop()
            if getattr(node, "qname", None) in blocks:
                yield teletype.extractText(node)
                continue
            stack.extend(reversed(getattr(node, "childNodes", [])))

    return _join(texts(), limits)


def decode_text(data: bytes) -> str:
    """A text attachment mail did not label: UTF-8 (with or without BOM), else a guess."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data[:1_000_000]).best()
    return data.decode(best.encoding if best else "cp1252", "replace")


def read_rtf(data: bytes, limits: ExtractLimits) -> str:
    from striprtf.striprtf import rtf_to_text

    # RTF is 7-bit; \'hh escapes are in the document's ANSI code page (cp1252 by default).
    text: str = rtf_to_text(data.decode("latin-1"), errors="replace")  # type: ignore[no-untyped-call]
    return _join(iter([text]), limits)


def read_html(data: bytes, limits: ExtractLimits) -> str:
    declared = meta_charset(data)
    try:
        html = data.decode(declared, "replace") if declared else decode_text(data)
    except LookupError:
        html = decode_text(data)
    converted = html_to_text(html, _HTML_TAGS)
    if converted.cut:
        raise _Cut(converted.text, f"HTML cut at {_HTML_TAGS} tags")
    return _join(iter([converted.text]), limits)


class _Binary(Exception):
    """A file named or labelled as text that is not text."""


def read_text(data: bytes, limits: ExtractLimits) -> str:
    head = data[:8192]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _Binary("binary data, not text")
    return _join(iter([decode_text(data)]), limits)


READERS: dict[Kind, Callable[[bytes, ExtractLimits], str]] = {
    Kind.PDF: read_pdf,
    Kind.DOCX: read_docx,
    Kind.XLSX: read_xlsx,
    Kind.PPTX: read_pptx,
    Kind.ODF: read_odf,
    Kind.RTF: read_rtf,
    Kind.HTML: read_html,
    Kind.TEXT: read_text,
}

_NO_TEXT = {
    Kind.PDF: "no text layer (a scan? OCR is not done)",
}


def extract_kind(kind: Kind, data: bytes, limits: ExtractLimits) -> Extraction:
    """Run the reader for `kind`; every outcome is a status, never an exception."""
    reader = READERS.get(kind)
    if reader is None:
        return Extraction(Status.UNSUPPORTED, detail=f"no text reader for {kind.value}")
    try:
        text = reader(data, limits)
    except _Encrypted as exc:
        return Extraction(Status.ENCRYPTED, detail=str(exc))
    except _Binary as exc:
        return Extraction(Status.UNSUPPORTED, detail=str(exc))
    except _Cut as cut:
        text = cut.text[: limits.max_chars]
        return Extraction(Status.TRUNCATED, text, str(cut))
    except MemoryError:
        raise  # the worker answers it and is replaced (archive.extract.worker)
    except RecursionError:
        return Extraction(Status.FAILED, detail=f"{kind.value}: nested too deeply")
    except Exception as exc:
        return Extraction(Status.FAILED, detail=f"{kind.value}: {type(exc).__name__}: {exc}"[:500])
    if not text.strip():
        return Extraction(Status.NO_TEXT, detail=_NO_TEXT.get(kind))
    return Extraction(Status.OK, text)
