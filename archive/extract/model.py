"""The values extraction hands over: a status, the text, and why (never an exception)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from archive import defaults


class Status(StrEnum):
    """What became of one attachment's text; `archive.attachments.text_status`."""

    OK = "ok"
    # Readable, but no text in it: a scanned PDF (OCR is out of scope), an image-only slide.
    NO_TEXT = "no_text"
    # A password is needed: an encrypted PDF, Office or ODF document, or ZIP entry.
    ENCRYPTED = "encrypted"
    # Not a format we read (images, legacy binary .doc/.xls/.ppt, executables).
    UNSUPPORTED = "unsupported"
    # The extractor failed; `detail` says why (damaged file, time or memory limit).
    FAILED = "failed"
    # Text was found but a limit cut it short; `detail` says which.
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class Extraction:
    """The text of one attachment, and how far extraction got."""

    status: Status
    text: str = field(default="", repr=False)
    detail: str | None = None

    @property
    def searchable(self) -> bool:
        return bool(self.text) and self.status in (Status.OK, Status.TRUNCATED)


# What a worker answers when an allocation failed; the pool then replaces it, as its heap is
# in an unknown state.
OUT_OF_MEMORY = Extraction(Status.FAILED, detail="memory limit reached")


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """Bounds that keep one hostile document from costing unbounded time or memory.

    `seconds` and `memory_bytes` are enforced from outside the extracting process (it is
    killed), the others by the extractors themselves.
    """

    seconds: float = defaults.EXTRACT_SECONDS
    memory_bytes: int = defaults.EXTRACT_MEMORY_BYTES
    max_input_bytes: int = 64 << 20
    max_chars: int = 2_000_000
    max_pages: int = 5_000
    # ZIP archives: nesting, members (over all levels) and bytes unpacked (all members).
    max_zip_depth: int = 3
    max_zip_members: int = 1_000
    max_unpacked_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("ExtractLimits.seconds must be positive")
        for name in (
            "memory_bytes",
            "max_input_bytes",
            "max_chars",
            "max_pages",
            "max_zip_members",
            "max_unpacked_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"ExtractLimits.{name} must be at least 1")
        if self.max_zip_depth < 0:
            raise ValueError("ExtractLimits.max_zip_depth must not be negative")


@dataclass(frozen=True, slots=True)
class AttachmentTexts:
    """What extraction gave one message's attachments.

    `by_path`: every attachment's outcome, by part path. `fresh`: the outcomes extracted
    now (not found in the archive-wide cache), by SHA-256, for the index writer to cache.
    """

    by_path: Mapping[str, Extraction]
    fresh: Mapping[str, Extraction] = field(default_factory=dict)
