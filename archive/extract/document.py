"""One attachment to an `Extraction`, in the calling process: what a worker runs.

ZIP archives are opened here, member by member, within `ExtractLimits`: nesting depth,
members over all levels, and bytes unpacked (each member is read at most up to what is
left, whatever its header claims, so a zip bomb stops at the limit). Office and
OpenDocument files are ZIP containers too; their declared sizes are checked before a
library unpacks them.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

from archive.extract.formats import extract_kind
from archive.extract.model import Extraction, ExtractLimits, Status
from archive.extract.sniff import Kind, detect

_CONTAINERS = (Kind.DOCX, Kind.XLSX, Kind.PPTX, Kind.ODF)


def extract_document(
    data: bytes, content_type: str, filename: str | None, limits: ExtractLimits
) -> Extraction:
    if len(data) > limits.max_input_bytes:
        return Extraction(
            Status.FAILED, detail=f"{len(data)} bytes, over the limit of {limits.max_input_bytes}"
        )
    return _Walk(limits).one(data, content_type, filename, 0)


@dataclass
class _Walk:
    limits: ExtractLimits
    members: int = 0
    unpacked: int = 0
    notes: list[str] = field(default_factory=list)

    def one(self, data: bytes, content_type: str, filename: str | None, depth: int) -> Extraction:
        kind = detect(data, content_type, filename)
        if kind is Kind.ENCRYPTED_OFFICE:
            return Extraction(Status.ENCRYPTED, detail="Office document is encrypted")
        if kind is Kind.LEGACY_OFFICE:
            return Extraction(
                Status.UNSUPPORTED, detail="legacy binary Office format (.doc, .xls, .ppt)"
            )
        if kind is Kind.ZIP:
            return self.archive(data, depth)
        if kind in _CONTAINERS:
            too_big = _declared_too_big(data, self.limits)
            if too_big:
                return Extraction(Status.FAILED, detail=too_big)
        return extract_kind(kind, data, self.limits)

    def archive(self, data: bytes, depth: int) -> Extraction:
        if depth >= self.limits.max_zip_depth:
            return Extraction(
                Status.TRUNCATED, detail=f"ZIP nested deeper than {self.limits.max_zip_depth}"
            )
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return self._members(archive, depth)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            return Extraction(Status.FAILED, detail=f"zip: {type(exc).__name__}: {exc}"[:500])

    def _members(self, archive: zipfile.ZipFile, depth: int) -> Extraction:
        texts: list[str] = []
        cut: list[str] = []
        encrypted = readable = 0
        for info in archive.infolist():
            if info.is_dir():
                continue
            if self.members >= self.limits.max_zip_members:
                cut.append(f"only {self.limits.max_zip_members} ZIP members read")
                break
            self.members += 1
            texts.append(info.filename)  # names are searchable too
            if info.flag_bits & 0x1:  # APPNOTE 4.4.4: bit 0, the entry is encrypted
                encrypted += 1
                continue
            room = self.limits.max_unpacked_bytes - self.unpacked
            if room <= 0:
                cut.append(f"ZIP unpacked past {self.limits.max_unpacked_bytes} bytes")
                break
            with archive.open(info) as member:
                content = member.read(min(room, self.limits.max_input_bytes) + 1)
            self.unpacked += len(content)
            if len(content) > min(room, self.limits.max_input_bytes):
                cut.append(f"{info.filename}: unpacked past the size limit, skipped")
                continue
            readable += 1
            inner = self.one(content, "application/octet-stream", info.filename, depth + 1)
            if inner.text:
                texts.append(inner.text)
            if inner.status is Status.TRUNCATED:
                cut.append(f"{info.filename}: {inner.detail}")
        text = "\n".join(texts)[: self.limits.max_chars]
        if cut:
            return Extraction(Status.TRUNCATED, text, "; ".join(cut)[:500])
        if encrypted and not readable:
            return Extraction(Status.ENCRYPTED, text, f"{encrypted} encrypted ZIP members")
        return Extraction(Status.OK, text) if text.strip() else Extraction(Status.NO_TEXT)


def _declared_too_big(data: bytes, limits: ExtractLimits) -> str | None:
    """Why an Office/ODF container must not be unpacked (its declared sizes), or None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"damaged container: {exc}"
    if len(infos) > limits.max_zip_members:
        return f"{len(infos)} parts in the container, over {limits.max_zip_members}"
    declared = sum(info.file_size for info in infos)
    if declared > limits.max_unpacked_bytes:
        return f"container unpacks to {declared} bytes, over {limits.max_unpacked_bytes}"
    return None
