"""The text inside a message's attachments, each distinct attachment extracted once.

Shared by the archiver and `mailarchive reindex`. An attachment whose text the parser
decoded (text parts, delivery reports, enclosed messages: their charset is the message's)
keeps that text; every other one is looked up by SHA-256 in the archive-wide cache
(`mailarchive.extracted_text`) and extracted in a worker process only when missing. The
index writer caches the fresh outcomes in the message's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from archive.extract import AttachmentTexts, Extraction, Extractor, Status
from archive.mime import ParsedMessage

Lookup = Callable[[Collection[str]], Mapping[str, Extraction]]
"""Cached outcomes by SHA-256 (archive.index.texts.cached_texts over a connection)."""


def extract_texts(parsed: ParsedMessage, extractor: Extractor, lookup: Lookup) -> AttachmentTexts:
    by_path: dict[str, Extraction] = {}
    wanted = [a for a in parsed.attachments if not a.text]
    cached = lookup({a.sha256 for a in wanted}) if wanted else {}
    fresh: dict[str, Extraction] = {}
    for attachment in parsed.attachments:
        if attachment.text:
            by_path[attachment.path] = Extraction(Status.OK)  # text is in the attachment
            continue
        found = cached.get(attachment.sha256) or fresh.get(attachment.sha256)
        if found is None:
            found = extractor.extract(attachment.data, attachment.content_type, attachment.filename)
            fresh[attachment.sha256] = found
        by_path[attachment.path] = found
    return AttachmentTexts(by_path, fresh)
