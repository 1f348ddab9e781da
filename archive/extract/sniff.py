"""Which reader an attachment needs: its bytes first, then its declared type and file name.

Mail clients often label a PDF `application/octet-stream`, and a sender controls both the
type and the name, so the magic numbers decide where there are any.
"""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# MS-OFFCRYPTO §2.3.4: an encrypted OOXML file is an OLE container with this stream.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_ODF_PREFIX = b"application/vnd.oasis.opendocument."
_TEXT_NAMES = (".txt", ".text", ".csv", ".tsv", ".md", ".log", ".json", ".xml", ".ics", ".vcf")
_HTML_NAMES = (".htm", ".html", ".xhtml")


class Kind(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    ODF = "odf"
    RTF = "rtf"
    HTML = "html"
    TEXT = "text"
    ZIP = "zip"
    ENCRYPTED_OFFICE = "encrypted-office"
    LEGACY_OFFICE = "legacy-office"
    UNKNOWN = "unknown"


def detect(data: bytes, content_type: str, filename: str | None) -> Kind:
    kind = _shallow(data, content_type, filename)
    return _zip_kind(data) if kind is None else kind


def has_reader(data: bytes, content_type: str, filename: str | None) -> bool:
    """Whether a reader may find text in `data`: False for what `detect` calls UNKNOWN
    (an image, an executable, random bytes), decided from the first bytes, the type and
    the name without unpacking anything, so the caller need not start a worker for it."""
    return _shallow(data, content_type, filename) is not Kind.UNKNOWN


def _shallow(data: bytes, content_type: str, filename: str | None) -> Kind | None:
    """`detect` without opening a ZIP container (None: a ZIP, to be looked into)."""
    head = data[:1024]
    name = (filename or "").lower()
    if b"%PDF-" in head:
        return Kind.PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return None
    if head.lstrip().startswith(b"{\\rtf"):
        return Kind.RTF
    if head.startswith(_OLE):
        return Kind.ENCRYPTED_OFFICE if _ENCRYPTED_PACKAGE in data else Kind.LEGACY_OFFICE
    content_type = content_type.lower()
    if content_type in ("text/html", "application/xhtml+xml") or name.endswith(_HTML_NAMES):
        return Kind.HTML
    if content_type.startswith("text/") or name.endswith(_TEXT_NAMES):
        return Kind.TEXT
    return Kind.UNKNOWN


def _zip_kind(data: bytes) -> Kind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" in names:
                for prefix, kind in (("word/", Kind.DOCX), ("xl/", Kind.XLSX), ("ppt/", Kind.PPTX)):
                    if any(n.startswith(prefix) for n in names):
                        return kind
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
                if archive.read("mimetype").startswith(_ODF_PREFIX):
                    return Kind.ODF
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        return Kind.ZIP  # damaged: the ZIP reader says how
    return Kind.ZIP
