"""Bytes to text under a declared charset that may be wrong, unknown or missing.

Order of attempts, so that a declaration is trusted when it works and evidence wins when
it does not:

1. the declared charset (RFC 2046 §4.1.2), through the label table of the WHATWG Encoding
   Standard, which is what mail clients and browsers actually do with labels such as
   "iso-8859-1" (really windows-1252) or "gb2312" (really GB18030); "ISO-2022-JP" and
   "EUC-JP" as Windows writes them (CP50220, CP51932: see `japanese`);
2. UTF-8, strictly: valid UTF-8 that is not ASCII is very unlikely to be anything else;
   then the declared charset or UTF-8 with a few damaged bytes replaced, when the valid
   multi-byte sequences dominate; "us-ascii" with 8-bit bytes as windows-1252 unless the
   detector finds a non-Latin script;
3. a guess by charset_normalizer on a bounded sample;
4. latin-1, which cannot fail.

Every step past the first is reported, so the index says which messages were guessed.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from dataclasses import dataclass

from charset_normalizer import from_bytes

from archive.mime import japanese
from archive.mime.defects import Defect, DefectKind

# WHATWG Encoding Standard §4.2 labels that Python does not know, or maps to a narrower
# codec than mail in the wild needs.
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "cp819": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "csgb2312": "gb18030",
    "chinese": "gb18030",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "windows-949": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "iso-8859-6-e": "iso-8859-6",
    "iso-8859-8-e": "iso-8859-8",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "unicode-1-1-utf-7": "utf-7",
    "ansi_x3.4-1968": "ascii",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "iso-2022-jp-ms": "iso2022_jp",
    "x-iso-2022-jp-ms": "iso2022_jp",
    "cp51932": "euc_jp",
    "eucjp-ms": "euc_jp",
    "eucjp-win": "euc_jp",
    "x-eucjp-open-19970715-ms": "euc_jp",
    "x-euc-jp": "euc_jp",
    "cseucpkdfmtjapanese": "euc_jp",
    "x-euc-cn": "gb18030",
    "gb_2312-80": "gb18030",
    "cn-big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "csksc56011987": "cp949",
    "iso-ir-149": "cp949",
}
# Whatever label Python resolves to these codecs, mail means the superset (WHATWG
# Encoding Standard §4.2 maps the same labels to the same encodings).
_SUPERSET_CODECS = {
    "iso8859-1": "cp1252",
    "latin-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}
# Codecs whose labels mailers use for a larger Microsoft charset that Python lacks.
_ISO2022JP = frozenset(
    {"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3"}
)
# RFC 1468 designations of JIS X 0208: 7-bit text holding them is ISO-2022-JP whatever
# its label says, and read as ASCII it would keep the escape sequences as text.
_JIS_ESCAPE = re.compile(rb"\x1b\$[@B]")

_MAX_LABEL = 40
_GUESS_SAMPLE = 256 * 1024
_LABEL_JUNK = re.compile(r"[\s\"';]+")


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text plus, when the declared charset was not used as is, why and what was used."""

    text: str
    problem: Defect | None = None


def clean_label(label: str | None) -> str | None:
    """A charset parameter as found in mail: quoted, padded, sometimes with junk after it."""
    if label is None:
        return None
    label = _LABEL_JUNK.sub(" ", label).strip().lower()
    label = label.split(" ", 1)[0] if label else ""
    return label[:_MAX_LABEL] or None


@functools.lru_cache(maxsize=512)
def lookup(label: str) -> str | None:
    """The Python codec name for a charset label, or None if there is no text codec for it."""
    for candidate in (_ALIASES.get(label, label), label, label.replace("-", "")):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError):
            continue
        # bytes-to-bytes codecs ("base64", "rot13") are found but cannot decode to text.
        if getattr(info, "_is_text_encoding", True):
            return _SUPERSET_CODECS.get(info.name, info.name)
    return None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def _strict_codec(data: bytes, codec: str) -> str | None:
    return codec if _strict(data, codec) is not None else None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 text with a few damaged bytes (a file name cut mid-character, one flipped
    byte in a long body), decoded with replacement characters; None if it is not that.

    Statistical detectors get this badly wrong (a Russian UTF-8 body with one bad byte
    comes out as GB18030), while the many valid multi-byte sequences are strong evidence.
    """
    text = data.decode("utf-8", "replace")
    errors = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    valid_non_ascii = len(text) - len(text.encode("ascii", "ignore")) - errors
    return text if valid_non_ascii >= 4 * max(errors, 1) else None


def _detect(sample: bytes) -> str | None:
    """charset_normalizer's best match; on a tie, windows-1252.

    Short Western European text scores the same in a handful of single-byte codecs, and
    the detector then picks the first (windows-1250, turning "à" into "ŕ"); windows-1252
    is by far the most common of them in mail.
    """
    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    tied = {
        lookup(match.encoding)
        for match in matches
        if (match.chaos, match.coherence) == (best.chaos, best.coherence)
    }
    return "cp1252" if "cp1252" in tied else lookup(best.encoding)


def guess(data: bytes, *, detect: bool = True) -> tuple[str, str]:
    """(text, codec) from content alone: UTF-8, then charset_normalizer, then latin-1.

    Without `detect` the detector (about 0.2 ms even for a few bytes) is skipped for
    windows-1252: for header words, which are too short for statistics anyway, and once a
    message has used up its share of guesses.
    """
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    text = _mostly_utf8(data)
    if text is not None:
        return text, "utf-8 with replacement characters"
    try:
        codec = _detect(data[:_GUESS_SAMPLE]) if detect else _strict_codec(data, "cp1252")
    except Exception:  # the detector is heuristic code; it must not take the parse down
        codec = None
    if codec is not None:
        try:
            return data.decode(codec, "replace"), codec
        except (UnicodeError, LookupError, ValueError):
            pass
    return data.decode("latin-1"), "latin-1"


def _superset(data: bytes, codec: str) -> tuple[str, int] | None:
    """(text, characters replaced) in the Windows superset of `codec`, if it has one."""
    if codec in _ISO2022JP:
        return japanese.decode_iso2022jp_ms(data)
    if codec == "euc_jp":
        return japanese.decode_eucjp_ms(data)
    return None


def _mostly(data: bytes, codec: str) -> tuple[str, int] | None:
    """`data` in `codec` with its few undecodable bytes replaced, if they are very few.

    One damaged byte must not send a long Chinese or Russian text to the detector. Text
    in another charset than declared fails far more often (EUC-JP read as Shift_JIS:
    one character in forty), so at most one error per 200 characters is taken as damage.
    """
    try:
        text = data.decode(codec, "replace")
    except (UnicodeError, LookupError, ValueError):
        return None
    errors = text.count("\ufffd")
    return (text, errors) if errors <= max(1, len(text) // 200) else None


def _latin(text: str) -> bool:
    """Whether the letters outside ASCII are Latin ones (or there are none)."""
    letters = [c for c in text if ord(c) > 0x7F and c.isalpha()]
    latin = sum(1 for c in letters if unicodedata.name(c, "").startswith("LATIN"))
    return latin * 2 >= len(letters)


def _western(data: bytes, detect: bool) -> tuple[str, str]:
    """8-bit text labelled us-ascii: windows-1252 (WHATWG maps the label to it), unless
    the detector finds a non-Latin script, as for Russian sent by a misconfigured mailer."""
    if detect:
        try:
            codec = _detect(data[:_GUESS_SAMPLE])
        except Exception:  # the detector is heuristic code; it must not take the parse down
            codec = None
        if codec is not None and codec != "cp1252":
            text = data.decode(codec, "replace")
            if not _latin(text):
                return text, codec
    text_or_none = _strict(data, "cp1252")
    return (
        (text_or_none, "cp1252")
        if text_or_none is not None
        else (data.decode("latin-1"), "latin-1")
    )


def _replaced(label: str, count: int) -> Defect:
    return Defect(
        DefectKind.TEXT_REPLACED, None, f"{count} undecodable bytes in {label!r} text replaced"
    )


def decode(
    data: bytes, declared: str | None, *, fallback_hint: str | None = None, detect: bool = True
) -> Decoded:
    """Decode `data`, reporting in `problem` when the declared charset could not be used.

    `fallback_hint` is a charset found elsewhere (an HTML <meta>), tried after UTF-8 when
    nothing was declared; `detect` is passed on to `guess`.
    """
    label = clean_label(declared)
    codec = lookup(label) if label is not None else None
    if codec not in _ISO2022JP and _JIS_ESCAPE.search(data) and data.isascii():
        text, replaced = japanese.decode_iso2022jp_ms(data)
        if replaced:
            return Decoded(text, _replaced("iso-2022-jp", replaced))
        if label:
            kind, detail = DefectKind.CHARSET_INVALID, f"ISO-2022-JP text labelled {label!r}"
        else:
            kind, detail = DefectKind.CHARSET_MISSING, "ISO-2022-JP text without a charset"
        return Decoded(text, Defect(kind, None, detail))
    if label is not None:
        if codec is None:
            text, used = guess(data, detect=detect)
            return Decoded(
                _strip_bom(text),
                Defect(
                    DefectKind.CHARSET_UNKNOWN,
                    None,
                    f"unknown charset {label!r}, decoded as {used}",
                ),
            )
        text_or_none = _strict(data, codec)
        if text_or_none is not None:
            return Decoded(_strip_bom(text_or_none))
        superset = _superset(data, codec)
        utf8 = None if data.isascii() else _strict(data, "utf-8")
        if superset is not None and not superset[1] and utf8 is None:
            return Decoded(_strip_bom(superset[0]))
        text_or_none = utf8
        if text_or_none is not None:
            return Decoded(
                _strip_bom(text_or_none),
                Defect(
                    DefectKind.CHARSET_INVALID, None, f"invalid {label!r} text, decoded as utf-8"
                ),
            )
        # A declared windows-1252 or ISO 8859-1 that failed only on windows-1252's five
        # undefined bytes is still best served by the real ISO 8859-1.
        if codec == "cp1252":
            return Decoded(data.decode("latin-1"))
        if codec == "ascii":
            text, used = _western(data, detect)
            return Decoded(
                _strip_bom(text),
                Defect(
                    DefectKind.CHARSET_INVALID, None, f"invalid {label!r} text, decoded as {used}"
                ),
            )
        if superset is not None and superset[1] > max(1, len(superset[0]) // 200):
            superset = None  # as for _mostly: that many errors mean another charset
        mostly = superset or _mostly(data, codec)
        if mostly is not None and codec != "utf-8":
            return Decoded(_strip_bom(mostly[0]), _replaced(label, mostly[1]))
        text, used = guess(data, detect=detect)
        return Decoded(
            _strip_bom(text),
            Defect(DefectKind.CHARSET_INVALID, None, f"invalid {label!r} text, decoded as {used}"),
        )
    if data.isascii():
        return Decoded(data.decode("ascii"))
    text_or_none = _strict(data, "utf-8")
    if text_or_none is not None:
        return Decoded(_strip_bom(text_or_none))
    hint = lookup(clean_label(fallback_hint) or "") if fallback_hint else None
    if hint is not None:
        text_or_none = _strict(data, hint)
        if text_or_none is not None:
            return Decoded(_strip_bom(text_or_none))
    text, used = guess(data, detect=detect)
    return Decoded(
        _strip_bom(text),
        Defect(DefectKind.CHARSET_MISSING, None, f"no charset declared, decoded as {used}"),
    )


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text
