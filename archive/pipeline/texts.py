"""The text inside a message's attachments, each distinct attachment extracted once.

Shared by the archiver and `mailarchive reindex`. An attachment whose text the parser
decoded (text parts, delivery reports, enclosed messages: their charset is the message's)
keeps that text. Bytes no reader takes (an image, an executable, random data:
`archive.extract.sniff.has_reader`, decided from the first bytes, the type and the name)
get the extractor's own answer, `unsupported`, which costs no worker: neither looked up nor
cached, as a lookup costs more than the answer (docs/benchmarks.md, "Index writes"). Every
other one is looked up by SHA-256 in the archive-wide cache (`mailarchive.extracted_text`)
and extracted in a worker process only when missing. The index writer caches the fresh
outcomes in the message's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from archive.extract import AttachmentTexts, Extraction, Extractor, Status
from archive.mime import Attachment, ParsedMessage

Lookup = Callable[[Collection[str]], Mapping[str, Extraction]]
"""Cached outcomes by SHA-256 (archive.index.texts.cached_texts over a connection)."""


def readerless(attachment: Attachment, extractor: Extractor) -> bool:
    """Whether `extractor` answers `attachment` without a worker (`Extractor.readerless`)."""
    return extractor.readerless(attachment.data, attachment.content_type, attachment.filename)


def extract_texts(parsed: ParsedMessage, extractor: Extractor, lookup: Lookup) -> AttachmentTexts:
    """Every attachment's outcome by part path, and the outcomes extracted now (`fresh`, by
    SHA-256) for the index to cache; `lookup` is asked at most once, for the SHA-256s of
    the attachments a reader takes and the parser left without text."""
    by_path: dict[str, Extraction] = {}
    fresh: dict[str, Extraction] = {}
    answered: dict[str, Extraction] = {}  # readerless, this message: answered once
    wanted: set[str] = set()
    for attachment in parsed.attachments:
        if attachment.text:
            by_path[attachment.path] = Extraction(Status.OK)  # text is in the attachment
        elif readerless(attachment, extractor):
            found = answered.get(attachment.sha256)
            if found is None:
                found = answered[attachment.sha256] = extractor.extract(
                    attachment.data, attachment.content_type, attachment.filename
                )
            by_path[attachment.path] = found
        else:
            wanted.add(attachment.sha256)
    cached = lookup(wanted) if wanted else {}
    for attachment in parsed.attachments:
        if attachment.path in by_path:
            continue
        found = cached.get(attachment.sha256) or fresh.get(attachment.sha256)
        if found is None:
            found = extractor.extract(attachment.data, attachment.content_type, attachment.filename)
            fresh[attachment.sha256] = found
        by_path[attachment.path] = found
    # In the attachments' order, as before: by_path is read in that order (tests, writers).
    return AttachmentTexts({a.path: by_path[a.path] for a in parsed.attachments}, fresh)
