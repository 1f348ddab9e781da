"""Attachment text extraction: speed per format and robustness on damaged files.

`uv run python -m benchmarks.extract_speed` (needs the dev dependencies: fpdf2 and
pdfminer.six). Documents are built with the libraries that write each format, at sizes
mail carries (a 1-page letter, a 50-page report, a 2,000-row sheet...), and read in this
process (archive.extract.extract_document, no worker) so the numbers are the readers'
own; the worker round trip is measured separately. For PDF, pypdfium2 is compared with
pdfminer.six on the same files, and both are fed damaged copies (truncated, bytes flipped).
"""

from __future__ import annotations

import io
import logging
import random
import statistics
import time
from collections.abc import Callable

from archive.extract import ExtractLimits, Extractor, extract_document
from tests.support import documents as d

LIMITS = ExtractLimits()
OCTETS = "application/octet-stream"
WORDS = "invoice quarterly revenue shipment contract delivery customer balance".split()


def _sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _report_pdf(pages: int) -> bytes:
    from fpdf import FPDF

    rng = random.Random(pages)
    doc = FPDF()
    doc.set_font("helvetica", size=10)
    for _ in range(pages):
        doc.add_page()
        for _ in range(45):
            doc.cell(text=_sentence(rng), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _report_docx(paragraphs: int) -> bytes:
    import docx

    rng = random.Random(paragraphs)
    document = docx.Document()
    for _ in range(paragraphs):
        document.add_paragraph(_sentence(rng, 40))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _sheet(rows: int) -> bytes:
    import openpyxl

    rng = random.Random(rows)
    book = openpyxl.Workbook()
    sheet = book.active
    for n in range(rows):
        sheet.append(
            [n, rng.random() * 1000, d.date(2026, 1 + n % 12, 1 + n % 28), rng.choice(WORDS)]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _deck(slides: int) -> bytes:
    import pptx

    rng = random.Random(slides)
    deck = pptx.Presentation()
    for _ in range(slides):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = _sentence(rng, 5)
        slide.placeholders[1].text = "\n".join(_sentence(rng) for _ in range(6))
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _odt(paragraphs: int) -> bytes:
    rng = random.Random(paragraphs)
    return d.odt_file("Report", "\n".join(_sentence(rng, 40) for _ in range(paragraphs)))


def _rtf(paragraphs: int) -> bytes:
    rng = random.Random(paragraphs)
    body = b"\\par ".join(_sentence(rng, 40).encode() for _ in range(paragraphs))
    return b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}\\f0 " + body + b"}"


def _html(paragraphs: int) -> bytes:
    rng = random.Random(paragraphs)
    return "".join(f"<p>{_sentence(rng, 40)} <b>bold</b></p>" for _ in range(paragraphs)).encode()


CASES: list[tuple[str, str, Callable[[], bytes]]] = [
    ("pdf", "1 page", lambda: _report_pdf(1)),
    ("pdf", "50 pages", lambda: _report_pdf(50)),
    ("docx", "20 paragraphs", lambda: _report_docx(20)),
    ("docx", "1,000 paragraphs", lambda: _report_docx(1000)),
    ("xlsx", "100 rows", lambda: _sheet(100)),
    ("xlsx", "10,000 rows", lambda: _sheet(10_000)),
    ("pptx", "30 slides", lambda: _deck(30)),
    ("odt", "1,000 paragraphs", lambda: _odt(1000)),
    ("rtf", "1,000 paragraphs", lambda: _rtf(1000)),
    ("html", "1,000 paragraphs", lambda: _html(1000)),
    (
        "zip",
        "docx + 50-page pdf",
        lambda: d.zip_file({"a.docx": _report_docx(20), "b.pdf": _report_pdf(50)}),
    ),
]


def _time(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _pdfminer(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return str(extract_text(io.BytesIO(data)))


def _pypdfium2(data: bytes) -> str:
    result = extract_document(data, "application/pdf", None, LIMITS)
    if result.status == "failed":
        raise ValueError(result.detail)
    return result.text


def _damaged(data: bytes, rng: random.Random) -> list[bytes]:
    out = [data[: len(data) // 2], data[: len(data) * 9 // 10]]
    for _ in range(8):
        flipped = bytearray(data)
        for _ in range(20):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append(bytes(flipped))
    return out


def main() -> None:
    logging.getLogger("pdfminer").setLevel(logging.CRITICAL)
    print("| format | document | size | median time | MB/s | characters |")
    print("|---|---|---:|---:|---:|---:|")
    pdfs: dict[str, bytes] = {}
    for kind, label, build in CASES:
        data = build()
        if kind == "pdf":
            pdfs[label] = data
        result = extract_document(data, "application/octet-stream", f"x.{kind}", LIMITS)
        name = f"x.{kind}"
        seconds = _time(
            lambda data=data, name=name: extract_document(
                data, "application/octet-stream", name, LIMITS
            )
        )
        print(
            f"| {kind} | {label} | {len(data) / 1024:,.0f} KB | {seconds * 1000:,.1f} ms | "
            f"{len(data) / seconds / 1e6:,.1f} | {len(result.text):,} ({result.status}) |"
        )
    print()
    print("| PDF reader | 1 page | 50 pages | damaged copies: text / error / crash or hang |")
    print("|---|---:|---:|---|")
    rng = random.Random(7)
    damaged = _damaged(pdfs["50 pages"], rng)
    for name, read in (
        ("pypdfium2", _pypdfium2),
        ("pdfminer.six", _pdfminer),
    ):
        one = _time(lambda read=read: read(pdfs["1 page"]))
        fifty = _time(lambda read=read: read(pdfs["50 pages"]), repeat=3)
        ok = failed = 0
        for copy in damaged:
            try:
                ok += bool(read(copy).strip())
            except Exception:
                failed += 1
        print(
            f"| {name} | {one * 1000:,.1f} ms | {fifty * 1000:,.0f} ms | "
            f"{ok} / {failed} / 0 of {len(damaged)} |"
        )
    print()
    pool = Extractor(LIMITS, workers=1)
    try:
        pool.extract(b"warm", "text/plain", None)
        small = pdfs["1 page"]
        trip = _time(lambda: pool.extract(small, "application/pdf", None), repeat=20)
        start = time.perf_counter()
        fresh = Extractor(LIMITS, workers=1)
        fresh.extract(b"warm", "text/plain", None)
        started = time.perf_counter() - start
        fresh.close()
        inproc = _time(lambda: extract_document(small, "application/pdf", None, LIMITS), repeat=20)
        print(
            f"worker round trip, 1-page PDF: {trip * 1000:.1f} ms "
            f"(in process {inproc * 1000:.1f} ms); a new worker: {started * 1000:.0f} ms"
        )
    finally:
        pool.close()


if __name__ == "__main__":
    main()
