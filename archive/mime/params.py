"""Content-Type and Content-Disposition values: "type/subtype; name=value; ...".

Written here rather than taken from `email.message` because the stdlib splitter
(`_parseparam`) is quadratic in the number of ";" inside quotes (a 256 KiB value takes
tens of seconds), and its RFC 2231 assembly (`utils.decode_params`) raises TypeError when
a message mixes "name*" and "name*0" — from inside the parser, on a hostile Content-Type.
This module is linear and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from archive.mime import charsets
from archive.mime.defects import Defect, DefectKind
from archive.mime.words import decode_words, unescape

# Enough for any real parameter list, including RFC 2231 continuations of a long file name;
# longer values are cut before parsing so the work stays bounded.
MAX_PARAM_CHARS = 16 * 1024
_MAX_SECTIONS = 1000

# One ";"-separated segment: quoted strings may contain ";" (RFC 2045 §5.1). Each
# alternative starts with a different character, so the match cannot backtrack.
_SEGMENT = re.compile(r'(?:[^;"]+|"(?:[^"\\]|\\.)*(?:"|\Z))*', re.DOTALL)
# Only \\ and \" are unescaped, as email.utils.unquote does: Windows paths sent as file
# names keep their backslashes.
_QUOTED_PAIR = re.compile(r'\\([\\"])')
# RFC 2231 §3-4: name*N (section), name* (encoded), name*N* (encoded section).
_RFC2231_NAME = re.compile(r"^([^*]+)\*(?:([0-9]{1,6})\*?)?$")
# A parameter after white space where the ";" before it is missing, as in
# "multipart/mixed\n\tboundary=x", "attachment filename=a.pdf" or 'name="a.pdf" size=1'
# (RFC 2045 §5.1 tokens).
_PARAM_AHEAD = r"(?=[!#$%&'*+\-.^_`|~0-9A-Za-z]+\s*=)"
_TYPE_THEN_PARAM = re.compile(r"\s*[^\s;=\"]+\s+" + _PARAM_AHEAD)
_PARAM_THEN_PARAM = re.compile(
    r'\s*[^\s=";]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^\s";]+)\s+' + _PARAM_AHEAD
)
_TOKEN_TYPE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+/[!#$%&'*+\-.^_`|~0-9a-z]+$")


@dataclass(frozen=True, slots=True)
class ParamField:
    """A parsed structured field: its lower-cased main value and decoded parameters."""

    value: str
    params: dict[str, str] = field(default_factory=dict)
    problems: tuple[Defect, ...] = ()


def _unquote(text: str) -> str:
    text = text.strip()
    if text.startswith('"'):
        end = len(text) - 1 if text.endswith('"') and len(text) > 1 else len(text)
        inner = text[1:end]
        return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner
    return text


def _segments(value: str) -> list[str]:
    out: list[str] = []
    position = 0
    while position <= len(value):
        match = _SEGMENT.match(value, position)
        end = match.end() if match else position
        out.append(value[position:end])
        position = end + 1
    return out


def parse(raw: str | None, hints: tuple[str, ...] = ()) -> ParamField | None:
    """Parse a raw (surrogate-escaped, possibly folded) header value; None if absent.

    `hints`: charsets for raw 8-bit text that is not UTF-8 (`headerbytes.header_codec`).
    """
    if raw is None:
        return None
    problems: list[Defect] = []
    if len(raw) > MAX_PARAM_CHARS:
        problems.append(
            Defect(
                DefectKind.HEADER_LIMIT,
                None,
                f"parameters longer than {MAX_PARAM_CHARS} characters cut",
            )
        )
        raw = raw[:MAX_PARAM_CHARS]
    text, guessed = unescape(raw.replace("\r", "").replace("\n", ""), hints)
    if guessed:
        problems.append(
            Defect(
                DefectKind.HEADER_8BIT,
                None,
                f"8-bit parameter text is not valid UTF-8, decoded as {guessed}",
            )
        )
    first, *rest = _segments(text)
    if "=" in first or any(segment.count("=") > 1 for segment in rest):
        first, rest, recovered = _missing_semicolons(first, rest)
        if recovered:
            problems.append(
                Defect(
                    DefectKind.HEADER_MALFORMED,
                    None,
                    f"missing ';' before {', '.join(recovered[:5])}, recovered",
                )
            )
    plain: dict[str, str] = {}
    extended: dict[str, list[tuple[int, str, bool]]] = {}
    for segment in rest:
        name, sep, value = segment.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if not sep:
            plain.setdefault(name, "")
            continue
        match = _RFC2231_NAME.match(name)
        if match:
            section = int(match.group(2)) if match.group(2) is not None else 0
            is_encoded = name.endswith("*")
            extended.setdefault(match.group(1), []).append((section, _unquote(value), is_encoded))
        else:
            plain.setdefault(name, _unquote(value))
    params: dict[str, str] = {}
    for name, value in plain.items():
        decoded, word_problems = decode_words(value)
        params[name] = decoded
        problems.extend(problem.within(f"parameter {name}") for problem in word_problems)
    for name, sections in extended.items():
        # RFC 2231 §4.1: an extended parameter takes precedence over a plain one.
        decoded, problem = _join_rfc2231(sections)
        params[name] = decoded
        if problem:
            problems.append(problem.within(f"parameter {name}"))
    return ParamField(first.strip().lower(), params, tuple(problems))


def _missing_semicolons(first: str, rest: list[str]) -> tuple[str, list[str], list[str]]:
    """Split segments where a mailer left out the ";" before a parameter (a boundary on
    a continuation line, most often); returns (first, rest, names recovered)."""
    segments: list[str] = []
    recovered: list[str] = []
    match = _TYPE_THEN_PARAM.match(first)
    if match:
        segments.append(first[match.end() :])
        first = first[: match.end()]
    segments.extend(rest)
    out: list[str] = []
    for index, segment in enumerate(segments):
        position = 0
        if index == 0 and match:
            recovered.append(segment.partition("=")[0].strip().lower())
        while (found := _PARAM_THEN_PARAM.match(segment, position)) is not None:
            value = segment[position : found.end()]
            if value.count("=?") > value.count("?="):
                break  # a space inside an encoded-word (RFC 2047 broken), not a new parameter
            out.append(value)
            position = found.end()
            recovered.append(segment[position:].partition("=")[0].strip().lower())
        out.append(segment[position:])
    return first, out, recovered


def _join_rfc2231(sections: list[tuple[int, str, bool]]) -> tuple[str, Defect | None]:
    """RFC 2231 §3-4: join the sections in order; percent-decode the encoded ones."""
    sections = sorted(sections[:_MAX_SECTIONS], key=lambda section: section[0])
    charset: str | None = None
    data = bytearray()
    for index, (_, value, is_encoded) in enumerate(sections):
        if is_encoded:
            if index == 0:
                # charset'language'value; only the first section carries them (§4).
                parts = value.split("'", 2)
                if len(parts) == 3:
                    charset = parts[0] or None
                    value = parts[2]
            data += unquote_to_bytes(value)
        else:
            data += value.encode("utf-8", "surrogateescape")
    label = charset or ("utf-8" if data.isascii() else None)
    decoded = charsets.decode(bytes(data), label, detect=False)
    if charset is None and "=?" in decoded.text:
        # Not RFC 2231 §4 (the charset belongs in the first section), but mailers split an
        # RFC 2047 encoded-word across sections, and mail clients decode the joined value.
        text, problems = decode_words(decoded.text)
        return text, decoded.problem or next(iter(problems), None)
    return decoded.text, decoded.problem


def content_type(field: ParamField | None, default: str) -> tuple[str, Defect | None]:
    """The lower-case type/subtype, and a problem if the declared one was unusable.

    RFC 2045 §5.2: a missing Content-Type means text/plain (message/rfc822 inside a
    multipart/digest, RFC 2046 §5.1.5), and an invalid one is treated as text/plain.
    """
    if field is None:
        return default, None
    value = "".join(field.value.split())
    if _TOKEN_TYPE.match(value):
        return value, None
    return "text/plain", Defect(
        DefectKind.BAD_CONTENT_TYPE,
        None,
        f"invalid Content-Type {value[:80]!r}, treated as text/plain",
    )
