"""Files hidden inside other parts (TNEF winmail.dat, uuencoded blocks in text bodies), and
the searchable header text of an enclosed message.

Both are leaves that a MIME parser sees as one part; the files in them are what the user
sent, so each becomes an attachment of its own. Their part paths extend the path of the
part they came from: "2~tnef1" is the first file in the TNEF attachment at part 2,
"1~uu1" the first uuencoded block in the body text of part 1 ("0" stands for the root).
"""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser

from archive.mime.defects import Defect, DefectKind
from archive.mime.transfer import decode_uuencode
from archive.mime.tree import POLICY
from archive.mime.words import decode_header_text, unfold

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
MAX_TNEF_FILES = 1000

# POSIX uuencode(1): "begin <octal mode> <name>", lines, "end".
_UU_BLOCK = re.compile(
    r"^begin(?:-base64)? [0-7]{3,4} ([^\r\n]{1,255})\r?\n(.*?)^end[ \t]*$", re.M | re.S
)
_UU_LINE = re.compile(r"^[!-`][ -`]*$")
MAX_UU_BLOCKS = 100


@dataclass(frozen=True, slots=True)
class Extracted:
    """A file found inside a part: where, its name, type and bytes."""

    path: str
    filename: str | None
    content_type: str
    data: bytes


def derived_path(path: str, kind: str, index: int) -> str:
    return f"{path or '0'}~{kind}{index}"


def guess_type(filename: str | None) -> str:
    guessed = mimetypes.guess_type(filename or "", strict=False)[0]
    return guessed or "application/octet-stream"


def is_tnef(content_type: str, filename: str | None) -> bool:
    return content_type in TNEF_TYPES or (filename or "").lower() == "winmail.dat"


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00").strip() or None


def tnef_files(
    path: str, data: bytes, problems: list[Defect]
) -> tuple[list[Extracted], str | None]:
    """The files inside a TNEF stream, and its plain-text body if it has one.

    tnefparse reads untrusted binary data; whatever it raises becomes a problem.
    """
    from tnefparse import TNEF

    logging.getLogger("tnefparse").setLevel(logging.ERROR)  # it warns per bad checksum
    try:
        tnef = TNEF(data, do_checksum=False)
    except Exception as exc:
        problems.append(
            Defect(
                DefectKind.BAD_TNEF,
                None,
                f"TNEF not decoded: {type(exc).__name__}: {str(exc)[:120]}",
            )
        )
        return [], None
    files: list[Extracted] = []
    for index, attachment in enumerate(tnef.attachments[:MAX_TNEF_FILES], 1):
        try:
            name = _text(attachment.long_filename()) or _text(attachment.name)
        except Exception:
            name = None
        payload = attachment.data if isinstance(attachment.data, bytes) else b""
        files.append(Extracted(derived_path(path, "tnef", index), name, guess_type(name), payload))
    if len(tnef.attachments) > MAX_TNEF_FILES:
        problems.append(
            Defect(DefectKind.PART_LIMIT, None, f"TNEF: only the first {MAX_TNEF_FILES} files kept")
        )
    return files, _text(tnef.body)


def uuencoded_files(path: str, text: str, problems: list[Defect]) -> tuple[list[Extracted], str]:
    """uuencoded blocks in body text as files; the text with each block replaced by a note."""
    if "begin " not in text:
        return [], text
    files: list[Extracted] = []
    kept: list[str] = []
    position = 0
    for match in _UU_BLOCK.finditer(text):
        lines = [line for line in match.group(2).splitlines() if line.strip()]
        # Require real uuencoded lines, or "begin 644 ..." in prose would be eaten.
        if not lines or not all(_UU_LINE.match(line) for line in lines):
            continue
        if len(files) >= MAX_UU_BLOCKS:
            problems.append(
                Defect(
                    DefectKind.PART_LIMIT,
                    None,
                    f"uuencode: only the first {MAX_UU_BLOCKS} blocks extracted",
                )
            )
            break
        data, block_problems = decode_uuencode(match.group(2).encode("latin-1", "replace"))
        problems.extend(block_problems)
        name = match.group(1).strip()
        files.append(
            Extracted(derived_path(path, "uu", len(files) + 1), name, guess_type(name), data)
        )
        kept.append(text[position : match.start()])
        kept.append(f"[uuencoded file {name}]")
        position = match.end()
    kept.append(text[position:])
    return files, "".join(kept)


_SHOWN_FIELDS = ("from", "to", "cc", "date", "subject", "message-id")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def enclosed_header_fields(data: bytes, max_bytes: int) -> list[tuple[str, str]] | None:
    """Every header field of an enclosed message (message/rfc822), unfolded and decoded.

    None when the header block cannot be read: the enclosure keeps its bytes, only these
    rows are lost.
    """
    end = _HEADER_END.search(data, 0, max_bytes)
    block = data[: end.start() if end else max_bytes]
    try:
        fields = BytesHeaderParser(policy=POLICY).parsebytes(block + b"\r\n\r\n").items()
        return [(name, decode_header_text(unfold(str(value)))[0].strip()) for name, value in fields]
    except Exception:  # a damaged enclosure keeps its bytes; only its header rows are lost
        return None


def enclosed_headers(fields: list[tuple[str, str]] | None) -> str | None:
    """The main fields of an enclosed message as text: the searchable text of its
    attachment row, so a forwarded or bounced message is found by its original sender or
    subject, linked to the message that carried it."""
    lines = [f"{name}: {value}" for name, value in fields or () if name.lower() in _SHOWN_FIELDS]
    return "\n".join(lines) or None
