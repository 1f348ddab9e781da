"""Raw RFC 5322 bytes to a parsed message: headers, addresses, body text, attachments.

`parse_message` never raises and is bounded by `ParseLimits`; everything it could not
read cleanly is listed in `ParsedMessage.defects`. The rules it follows (which parts are
body text, which are attachments, how parts are numbered, what happens to enclosed
messages) are in the docstring of `archive.mime.parse`.
"""

from archive.mime.defects import Defect, DefectKind
from archive.mime.model import (
    Address,
    Attachment,
    Envelope,
    HeaderField,
    ParsedMessage,
    ParseLimits,
)
from archive.mime.parse import parse_message

# Bumped whenever parsing changes what is indexed; `mailarchive reindex` re-parses every
# message indexed by an older version. 1: up to migration 0003; 2: attachment text,
# TNEF, uuencode in bodies; 3: header fields of enclosed messages; 4: typed defects
# (rows in mailarchive.defect, migration 0005); 5: real-world decoding (issue 11 §1:
# padded QP soft breaks, CP50220, inline HTML, format=flowed, RFC 2231 + 2047, the text
# of alternatives, 8-bit headers, invisible characters, local base64 damage).
PARSER_VERSION = 5

__all__ = [
    "Address",
    "Attachment",
    "Defect",
    "DefectKind",
    "Envelope",
    "PARSER_VERSION",
    "HeaderField",
    "ParseLimits",
    "ParsedMessage",
    "parse_message",
]
