"""Attachments built in the tests, with the libraries that write each format.

Each builder puts the given words where a reader sees them; the hostile ones are small on
disk and enormous (or endless) once read.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from datetime import date, datetime

import docx
import openpyxl
import pptx
from fpdf import FPDF
from msoffcrypto.format.ooxml import OOXMLFile
from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet, OpenDocumentText
from odf.table import Table, TableCell, TableRow
from odf.text import H, P


def pdf(*lines: str) -> bytes:
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=12)
    for line in lines:
        doc.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def pdf_two_columns(left: list[str], right: list[str]) -> bytes:
    """A newsletter-style page: two columns of lines side by side."""
    doc = FPDF()
    doc.add_page()
    doc.set_font("helvetica", size=11)
    for x, lines in ((10, left), (110, right)):
        doc.set_xy(x, 20)
        for line in lines:
            doc.set_x(x)
            doc.cell(w=90, text=line, new_x="LEFT", new_y="NEXT")
    return bytes(doc.output())


def pdf_encrypted(line: str, password: str = "s3cret") -> bytes:
    doc = FPDF()
    doc.set_encryption(owner_password="owner-" + password, user_password=password)
    doc.add_page()
    doc.set_font("helvetica", size=12)
    doc.cell(text=line)
    return bytes(doc.output())


def pdf_scanned() -> bytes:
    """A page with only drawings, as a scanner's image would be: no text layer."""
    doc = FPDF()
    doc.add_page()
    for n in range(20):
        doc.rect(10 + n * 5, 10 + n * 5, 50, 30, style="F")
    return bytes(doc.output())


def pdf_hostile(inflated_bytes: int = 400 << 20) -> bytes:
    """A one-page PDF whose content stream inflates to `inflated_bytes` of text operators:
    a few hundred KB on disk, far more time and memory than a reader is given."""
    unit = b"BT /F1 1 Tf 1 0 0 1 10 10 Tm (zzzzzzzz) Tj ET\n" * 1000
    packer = zlib.compressobj(9)
    parts = [packer.compress(unit) for _ in range(inflated_bytes // len(unit))]
    stream = b"".join(parts) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _saved(document: object) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)  # type: ignore[attr-defined]
    return buffer.getvalue()


def docx_file(paragraph: str, cell: str = "", header: str = "") -> bytes:
    document = docx.Document()
    if header:
        document.sections[0].header.is_linked_to_previous = False
        document.sections[0].header.paragraphs[0].text = header
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph(paragraph)
    if cell:
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "item"
        table.cell(1, 1).text = cell
    return _saved(document)


def docx_encrypted(paragraph: str, password: str = "s3cret") -> bytes:
    """An Office document with a password to open (ECMA-376 agile encryption)."""
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(docx_file(paragraph))).encrypt(password, out)
    return out.getvalue()


def xlsx_file(word: str) -> bytes:
    """A spreadsheet as accounting sends it: a header, numbers, dates, a formula."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Invoices"
    sheet.append(["Invoice", "Amount", "Due", "Customer"])
    sheet.append([1001, 1234.5, date(2026, 3, 31), word])
    sheet.append([1002, 99, datetime(2026, 4, 1, 9, 30), "Globex"])
    sheet["B4"] = "=SUM(B2:B3)"
    book.create_sheet("Notes")["A1"] = "second sheet note"
    return _saved(book)


def pptx_file(title: str, notes: str = "") -> bytes:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text = "first bullet\nsecond bullet"
    if notes:
        slide.notes_slide.notes_text_frame.text = notes
    return _saved(deck)


def odt_file(heading: str, paragraph: str) -> bytes:
    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text=heading))
    document.text.addElement(P(text=paragraph))
    return _saved(document)


def ods_file(word: str) -> bytes:
    document = OpenDocumentSpreadsheet()
    table = Table(name="Sheet1")
    row = TableRow()
    for value in ("Total", word):
        cell = TableCell()
        cell.addElement(P(text=value))
        row.addElement(cell)
    table.addElement(row)
    document.spreadsheet.addElement(table)
    return _saved(document)


def odp_file(word: str) -> bytes:
    from odf.draw import Frame, Page, TextBox
    from odf.style import MasterPage, PageLayout

    document = OpenDocumentPresentation()
    layout = PageLayout(name="layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    page = Page(masterpagename=master)
    frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
    box = TextBox()
    box.addElement(P(text=word))
    frame.addElement(box)
    page.addElement(frame)
    document.presentation.addElement(page)
    return _saved(document)


def rtf_file(word: str) -> bytes:
    return (
        b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}\\f0\\fs24 Dear customer,\\par "
        + word.encode()
        + b" and caf\\'e9 cr\\'e8me\\par}"
    )


def zip_file(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_nested(innermost: dict[str, bytes], depth: int) -> bytes:
    data = zip_file(innermost)
    for level in range(depth - 1):
        data = zip_file({f"level{level}.zip": data})
    return data


def zip_bomb(unpacked: int = 64 << 20, members: int = 4) -> bytes:
    """Members of zeros, each `unpacked` bytes once inflated, ~1000 times smaller packed."""
    zeros = bytes(1 << 20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(members):
            with archive.open(f"zeros{n}.txt", "w") as member:
                for _ in range(unpacked >> 20):
                    member.write(zeros)
    return out.getvalue()
