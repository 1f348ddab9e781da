"""Parse a stored or spooled original and store its attachments: shared by the archiver
and `mailarchive reindex`, so both index a message the same way.

Messages larger than `max_bytes` are parsed by header only (read line by line, at most
`HEADER_ONLY_LIMIT`), so memory stays flat whatever the size; the defect says so and the
raw message stays whole in the store.
"""

from __future__ import annotations

import dataclasses
import io
from typing import IO

from archive.defaults import PARSE_MAX_BYTES
from archive.mime import Defect, DefectKind, ParsedMessage, ParseLimits, parse_message
from archive.store import ObjectStore, part_key, put_verified

HEADER_ONLY_LIMIT = 1 << 20


def parse_original(
    file: IO[bytes], size: int, limits: ParseLimits, max_bytes: int = PARSE_MAX_BYTES
) -> ParsedMessage:
    file.seek(0)
    if size <= max_bytes:
        return parse_message(file.read(), limits)
    parsed = parse_message(_header_block(file, HEADER_ONLY_LIMIT), limits)
    defect = Defect(
        DefectKind.HEADER_ONLY,
        None,
        f"message is {size} bytes, over the parse limit of {max_bytes}: "
        "only its header is indexed (the raw message is archived whole)",
    )
    return dataclasses.replace(parsed, defects=(*parsed.defects, defect))


def store_attachments(store: ObjectStore, parsed: ParsedMessage) -> None:
    """Every decoded attachment, content-addressed and verified, before its row commits. No
    DELE depends on an attachment, so a store's own check on arrival (S3) may stand in for
    the read-back (`put_verified(read_back=False)`)."""
    for attachment in parsed.attachments:
        put_verified(
            store,
            part_key(attachment.sha256),
            io.BytesIO(attachment.data),
            attachment.sha256,
            attachment.size,
            read_back=False,
        )


def _header_block(file: IO[bytes], limit: int) -> bytes:
    """The header section (up to the first empty line), read line by line, at most `limit`."""
    file.seek(0)
    lines: list[bytes] = []
    total = 0
    while total < limit:
        line = file.readline(limit - total)
        if not line or line in (b"\r\n", b"\n"):
            break
        lines.append(line)
        total += len(line)
    return b"".join(lines) + b"\r\n"
