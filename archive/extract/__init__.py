"""Attachment bytes → searchable text and a status, within hard limits.

`Extractor` (archive.extract.pool) runs `extract_document` (archive.extract.document) in
worker processes; the readers per format are in archive.extract.formats. Nothing here
touches the database or the store: the pipeline decides what to extract (each distinct
SHA-256 once) and the index writer stores the result.
"""

from archive.extract.document import extract_document
from archive.extract.model import AttachmentTexts, Extraction, ExtractLimits, Status
from archive.extract.pool import Extractor

# Bumped whenever extraction changes what is indexed: `mailarchive reindex` re-extracts
# every message indexed by an older version (message.extract_version), and cached texts
# (mailarchive.extracted_text) of an older version are extracted again. 1: migration 0008.
EXTRACTOR_VERSION = 1

__all__ = [
    "AttachmentTexts",
    "EXTRACTOR_VERSION",
    "ExtractLimits",
    "Extraction",
    "Extractor",
    "Status",
    "extract_document",
]
