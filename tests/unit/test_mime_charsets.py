"""Transfer encodings and charsets as real mailers get them wrong (issue 11 §1).

The case files in tests/data/cases/ are copies of shared/cases/ (README.md there gives the
right values); the other inputs here are the same kinds in other shapes.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from archive.mime import Defect, DefectKind, ParsedMessage, parse_message
from archive.mime.japanese import decode_eucjp_ms, decode_iso2022jp_ms
from archive.mime.transfer import decode_base64

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"


def case(name: str) -> ParsedMessage:
    return parse_message((CASES / name).read_bytes())


def text_part(body: bytes, content_type: str, encoding: str = "8bit") -> ParsedMessage:
    return parse_message(
        b"From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        + f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        + body
    )


# Quoted-printable soft line breaks that a relay padded (RFC 2045 §6.7 rule 3)


def test_case_101_qp_soft_break_followed_by_white_space():
    parsed = case("101-qp-soft-break-trailing-ws.eml")
    assert parsed.body_text.splitlines()[-1] == (
        "anbei die Auftragsbestätigung für Ihre Bestellung. Die Lieferadresse bleibt unverändert."
    )
    assert parsed.defects == ()


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
@pytest.mark.parametrize("padding", [b" ", b"\t", b" \t  "])
def test_qp_padded_soft_break_joins_lines(eol: bytes, padding: bytes):
    body = b"Stra=C3=9Fenbahn=" + padding + eol + b"haltestelle und Ende=" + padding
    parsed = text_part(body, "text/plain; charset=utf-8", "quoted-printable")
    assert parsed.body_text == "Straßenbahnhaltestelle und Ende"


def test_qp_text_that_is_not_a_soft_break_keeps_its_equals_sign():
    parsed = text_part(b"a = b\r\nx =3D y", "text/plain; charset=us-ascii", "quoted-printable")
    assert parsed.body_text == "a = b\nx = y"


# ISO-2022-JP as Windows writes it (CP50220/CP50221), and other Windows supersets


def test_case_102_iso2022jp_with_nec_row_13():
    parsed = case("102-iso2022jp-nec-circled-digits.eml")
    assert parsed.subject == "定例会議①のご案内"
    assert [(a.role, a.name) for a in parsed.addresses][0] == ("from", "総務部")
    lines = parsed.body_text.splitlines()
    for line in ("来週の定例会議の議題です。", "①予算の確認", "②日程の調整"):
        assert line in lines
    assert "\x1b" not in parsed.body_text
    assert parsed.defects == ()


def _jis(text: str) -> bytes:
    """CP932 text as CP50220 writes it: Shift_JIS codes turned into JIS escapes."""
    out = bytearray()
    for char in text:
        if char.isascii():
            out += b"\x1b(B" + char.encode()
            continue
        lead, trail = char.encode("cp932")
        row = (lead - (0x70 if lead < 0xA0 else 0xB0)) * 2 - (1 if trail < 0x9F else 0)
        cell = trail - (0x1F if trail < 0x7F else 0x20 if trail < 0x9F else 0x7E)
        out += b"\x1b$B" + bytes((row, cell))
    return bytes(out + b"\x1b(B")


@pytest.mark.parametrize(
    "text",
    [
        "①②③ ㈱ ㍻ № ≒",  # NEC row 13
        "纊褜鍈銈",  # NEC-selected IBM extensions (rows 89-92)
        "日本語のテキスト、カタカナ。",  # plain JIS X 0208
    ],
)
def test_cp50220_extensions_decode(text: str):
    assert decode_iso2022jp_ms(_jis(text)) == (text, 0)
    parsed = text_part(_jis(text), 'text/plain; charset="iso-2022-jp"', "7bit")
    assert (parsed.body_text, parsed.defects) == (text, ())


def test_cp50221_half_width_katakana_and_shift_out():
    assert decode_iso2022jp_ms(b"\x1b(I12\x1b(B ab \x0e34\x0fc") == ("ｱｲ ab ｳｴc", 0)


def test_iso2022jp_in_a_header_encoded_word():
    encoded = "=?iso-2022-jp?B?GyRCLSEtIhsoQg==?="  # ①②
    parsed = parse_message(f"Subject: {encoded} Tagesordnung\r\n\r\nx".encode())
    assert parsed.subject == "①② Tagesordnung"


def test_iso2022jp_without_a_label_is_not_kept_as_escapes():
    parsed = parse_message(b"Subject: x\r\n\r\n" + _jis("会議①"))
    assert parsed.body_text == "会議①"
    assert parsed.defects == (
        Defect(DefectKind.CHARSET_MISSING, "", "ISO-2022-JP text without a charset"),
    )


def test_eucjp_with_nec_extensions():
    data = "定例会議".encode("euc_jp") + b"\xad\xa1" + "丂".encode("euc_jp")
    assert decode_eucjp_ms(data) == ("定例会議①丂", 0)
    parsed = text_part(data, "text/plain; charset=EUC-JP")
    assert (parsed.body_text, parsed.defects) == ("定例会議①丂", ())


@pytest.mark.parametrize(
    ("label", "text", "codec"),
    [
        ("GB2312", "丂与 会议通知", "gb18030"),  # 丂 is GBK, not GB2312
        ("EUC-KR", "똠방각하 회의", "cp949"),  # 똠 is CP949 (Unified Hangul), not EUC-KR
        ("ISO-8859-1", "Preis: 20 € – „Angebot“", "cp1252"),
        ("US-ASCII", "Don’t pay 20 € – it’s free", "cp1252"),
        ("Shift_JIS", "会議① ㈱", "cp932"),  # NEC row 13 in CP932
        ("Big5", "嘅咗啲 會議", "big5hkscs"),  # HKSCS characters
    ],
)
def test_superset_charsets_declared_by_the_subset_name(label: str, text: str, codec: str):
    parsed = text_part(text.encode(codec), f"text/plain; charset={label}")
    assert parsed.body_text == text
    # 8-bit bytes are invalid US-ASCII, so that one is recorded; the others are not.
    invalid = Defect(DefectKind.CHARSET_INVALID, "", "invalid 'us-ascii' text, decoded as cp1252")
    assert parsed.defects == ((invalid,) if label == "US-ASCII" else ())


def test_us_ascii_label_on_russian_text_still_finds_the_script():
    text = "Приветствую вас, дорогие друзья! Это письмо на русском языке. " * 3
    parsed = text_part(text.encode("cp1251"), "text/plain; charset=us-ascii")
    assert parsed.body_text == text.strip()


def test_declared_multibyte_charset_with_a_bad_byte_keeps_its_text():
    data = "会議の議題です。予算の確認と日程の調整。".encode("cp932")
    data = data[:6] + b"\x85\x40" + data[6:]  # unassigned in CP932
    parsed = text_part(data, "text/plain; charset=shift_jis")
    assert parsed.body_text == "会議の\ufffd@議題です。予算の確認と日程の調整。"
    assert parsed.defects == (
        Defect(DefectKind.TEXT_REPLACED, "", "1 undecodable bytes in 'shift_jis' text replaced"),
    )


# Damage stays local: base64


_RUSSIAN = "".join(f"Строка {n}: протокол совещания утверждён бухгалтерией.\n" for n in range(8))


def _b64_lines() -> list[bytes]:
    return base64.encodebytes(_RUSSIAN.encode()).splitlines()


def _base64_part(lines: list[bytes]) -> ParsedMessage:
    return text_part(b"\r\n".join(lines), "text/plain; charset=utf-8", "base64")


def test_base64_with_characters_replaced_in_one_line_keeps_the_rest():
    lines = _b64_lines()
    lines[3] = lines[3][:40] + b"!*" + lines[3][42:]  # two characters replaced in place
    parsed = _base64_part(lines)
    good = [line for line in _RUSSIAN.splitlines() if line in parsed.body_text.splitlines()]
    assert len(good) == 7  # every line but the one the damaged quantum falls in
    assert parsed.body_text.count("\ufffd") <= 3
    assert Defect(DefectKind.BAD_BASE64, "", "damaged line 4, 4 characters not decoded") in (
        parsed.defects
    )


def test_base64_with_a_character_lost_keeps_the_lines_after_it():
    lines = _b64_lines()
    lines[2] = lines[2][:30] + b"#" + lines[2][32:]  # one character lost, one junk added
    parsed = _base64_part(lines)
    kept = parsed.body_text.splitlines()
    assert [kept[n] for n in (0, 2, 3, 4, 5, 6, 7)] == [
        line for n, line in enumerate(_RUSSIAN.splitlines()) if n != 1
    ]
    assert parsed.defects == (
        Defect(DefectKind.BAD_BASE64, "", "damaged line 3, 2 characters not decoded"),
        Defect(
            DefectKind.CHARSET_INVALID,
            "",
            "invalid 'utf-8' text, decoded as utf-8 with replacement characters",
        ),
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda lines: lines[:2] + [lines[2] + b"!!" + lines[3][1:]] + lines[4:],  # merged
        lambda lines: lines[:3] + [b"-- a line of text --"] + lines[3:],  # text inserted
        lambda lines: lines[:2] + [lines[2][:20] + "  Привет".encode() + lines[2][24:]] + lines[3:],
        lambda lines: lines[:2] + [lines[2][:50]] + lines[3:],  # a line cut short
    ],
)
def test_base64_damage_leaves_the_lines_after_it_intact(damage):
    parsed = _base64_part(damage(_b64_lines()))
    assert parsed.body_text.splitlines()[-4:] == _RUSSIAN.splitlines()[-4:]
    assert parsed.body_text.splitlines()[0] == _RUSSIAN.splitlines()[0]
    assert DefectKind.BAD_BASE64 in [d.kind for d in parsed.defects]


def test_junk_after_base64_padding_is_not_decoded():
    encoded = base64.encodebytes("Grüße aus der Buchhaltung.".encode())
    assert encoded.rstrip().endswith(b"=")
    parsed = text_part(
        encoded + b"\r\n-- \r\nListe: https://lists.example.org/x\r\n",
        "text/plain; charset=utf-8",
        "base64",
    )
    assert parsed.body_text == "Grüße aus der Buchhaltung."
    assert parsed.defects == (
        Defect(DefectKind.BAD_BASE64, "", "36 characters after the padding ignored"),
    )


def test_text_after_unpadded_base64_is_not_decoded():
    encoded = base64.encodebytes("Quartalsbericht für März, Seite 1 von 3.".encode() * 3)
    parsed = text_part(
        encoded + b"_______________________________________________\r\nListe mailing list\r\n",
        "text/plain; charset=utf-8",
        "base64",
    )
    assert parsed.body_text == "Quartalsbericht für März, Seite 1 von 3." * 3
    assert [d.kind for d in parsed.defects] == [DefectKind.BAD_BASE64]


def test_base64_encoded_in_padded_chunks_is_still_joined():
    data = b"YWJjZA==\r\nZWZnaA==\r\n"
    parsed = parse_message(
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + data
        + b"--b--\r\n"
    )
    assert parsed.attachments[0].data == b"abcdefgh"


@pytest.mark.parametrize(
    ("label", "codec"),
    [("shift_jis", "euc_jp"), ("iso-2022-jp", "utf-8"), ("euc-jp", "utf-8"), ("big5", "utf-8")],
)
def test_text_in_another_charset_than_declared_is_not_read_as_the_declared_superset(
    label: str, codec: str
):
    text = "来週の定例会議の議題です。予算の確認と日程の調整をお願いします。資料は総務部まで。"
    parsed = text_part((text * 2).encode(codec), f"text/plain; charset={label}")
    assert parsed.body_text == text * 2
    assert [d.kind for d in parsed.defects] == [DefectKind.CHARSET_INVALID]


@pytest.mark.parametrize(
    ("data", "decoded", "detail"),
    [
        (b"SGVsbG8=junk text here", b"Hello", "14 characters after the padding ignored"),
        (b"YWJjZA==ZWZnaA==", b"abcdefgh", "padding inside the data"),
        (b"SGVsbG8gd29ybGQh\r\nSGk=\r\n-- \r\nfooter", b"Hello world!Hi", "8 characters after the padding ignored"),
    ],
)  # fmt: skip
def test_base64_padding_ends_the_data_unless_base64_follows(
    data: bytes, decoded: bytes, detail: str
):
    assert decode_base64(data) == (decoded, [Defect(DefectKind.BAD_BASE64, None, detail)])


def test_many_extensions_decode_past_the_retry_cap():
    jis = b"\x1b$B" + b"-!" * 100 + b"\x1b(B"  # ① a hundred times: past _MAX_RETRIES
    assert decode_iso2022jp_ms(jis) == ("①" * 100, 0)
    euc = ("会議".encode("euc_jp") + b"\xad\xa1") * 100
    assert decode_eucjp_ms(euc) == ("会議①" * 100, 0)


def test_corpus_base64_damaged_in_one_place_keeps_its_russian_words(corpus: Path):
    # Before: the whole part fell back to latin-1 ("Ñ\x87Ñ\x82Ð¾Ð±Ñ\x8b ...").
    parsed = parse_message((corpus / "flanker" / "enclosed-broken-body.eml").read_bytes())
    assert "чтобы я без вас делал, дорогие мои!!!" in parsed.body_text.splitlines()
    assert "Co-fder and CEO of Mailgun.net - the email platform for developers." in (
        parsed.body_text.splitlines()
    )
    assert Defect(DefectKind.BAD_BASE64, "2.1", "damaged line 3, 1 characters not decoded") in (
        parsed.defects
    )
