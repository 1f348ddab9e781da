"""Raw RFC 5322 bytes to a parsed message: headers, addresses, body text, attachments.

`parse_message` never raises and is bounded by `ParseLimits`; everything it could not
read cleanly is listed in `ParsedMessage.defects`. The rules it follows (which parts are
body text, which are attachments, how parts are numbered, what happens to enclosed
messages) are in the docstring of `archive.mime.parse`.
"""

from archive.mime.model import Address, Attachment, HeaderField, ParsedMessage, ParseLimits
from archive.mime.parse import parse_message

__all__ = [
    "Address",
    "Attachment",
    "HeaderField",
    "ParseLimits",
    "ParsedMessage",
    "parse_message",
]
