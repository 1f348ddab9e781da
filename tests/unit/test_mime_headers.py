"""Header text as mail clients read it (issue 11 §1): encoded-words that break RFC 2047,
raw 8-bit bytes in Subject, display names and file names, invisible characters."""

from __future__ import annotations

import base64

import pytest

from archive.mime import Defect, DefectKind, ParsedMessage, parse_message
from archive.mime.params import parse as params_parse


def headers(*lines: bytes, body: bytes = b"x", content_type: bytes | None = None) -> ParsedMessage:
    head = b"".join(line + b"\r\n" for line in lines)
    if content_type is not None:
        head += b"Content-Type: " + content_type + b"\r\n"
    return parse_message(head + b"\r\n" + body)


# Encoded-words that break RFC 2047 the way clients still decode


@pytest.mark.parametrize(
    ("value", "subject"),
    [
        # spaces inside the encoded text (Q and B)
        (b"=?utf-8?Q?Gr=C3=BC=C3=9Fe aus K=C3=B6ln?=", "Grüße aus Köln"),
        (b"=?utf-8?B?R3LDvMOfZSBh dXMgS8O2bG4=?=", "Grüße aus Köln"),
        # a multi-byte character split across two adjacent encoded-words
        (b"=?utf-8?B?4oI=?= =?utf-8?B?rA==?= 20", "€ 20"),
        (b"=?utf-8?Q?Stra=C3?= =?UTF8?Q?=9Fe?=", "Straße"),
        (b"=?shift_jis?B?iQ==?= =?shift_jis?B?74tj?=", "会議"),  # 0x89 | 0xEF 0x8B 0x63
        # no white space between encoded-words and plain text
        (b"Re:=?utf-8?q?R=C3=A9union?=demain", "Re:Réuniondemain"),
        (b"(=?utf-8?q?Entw=C3=BCrfe?=)", "(Entwürfe)"),
        # wrong case: encoding letter, charset, hex digits
        (b"=?UTF-8?b?w7w=?= =?Utf-8?q?=c3=a4?=", "üä"),
        # an unknown charset label: UTF-8, else windows-1252
        (b"=?x-unknown?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),
        (b"=?unknown-8bit?q?Gr=FC=DFe?=", "Grüße"),
        # encoded-word inside a quoted string
        (b'"=?utf-8?q?M=C3=BCller?="', '"Müller"'),
    ],
)
def test_broken_encoded_words_decode_as_clients_show_them(value: bytes, subject: str):
    assert headers(b"Subject: " + value).subject == subject


def test_unknown_charset_label_is_a_defect():
    parsed = headers(b"Subject: =?x-unknown?q?Gr=C3=BC=C3=9Fe?=")
    assert [d.kind for d in parsed.defects] == [DefectKind.CHARSET_UNKNOWN]


@pytest.mark.parametrize(
    ("value", "subject"),
    [
        (b"=?utf-8?q?Fr\xc3\xb6sche?=", "Frösche"),
        (b"=?iso-8859-1?q?Fr\xf6sche_und_Kr=F6ten?=", "Frösche und Kröten"),
        (b"=?utf-8?q?Fr\xc3\xb6sche?= und Kr\xc3\xb6ten", "Frösche und Kröten"),
        (b"=?windows-1251?q?\xcf\xf0\xe8\xe2\xe5\xf2?= aus Moskau", "Привет aus Moskau"),
    ],
)
def test_raw_8bit_byte_inside_an_encoded_word(value: bytes, subject: str):
    assert headers(b"Subject: " + value).subject == subject


# Raw 8-bit bytes: the message's own charset, then a detector, then windows-1252


def test_raw_header_bytes_use_the_charset_of_the_text_parts():
    subject, name = "Отчёт за март".encode("koi8_r"), "Иван Петров".encode("koi8_r")
    parsed = headers(
        b"Subject: " + subject,
        b"From: " + name + b" <ivan@example.ru>",
        content_type=b"text/plain; charset=KOI8-R",
        body="Привет".encode("koi8_r"),
    )
    assert parsed.subject == "Отчёт за март"
    assert [(a.name, a.address) for a in parsed.addresses] == [("Иван Петров", "ivan@example.ru")]
    assert parsed.body_text == "Привет"
    assert (
        Defect(
            DefectKind.HEADER_8BIT,
            None,
            "Subject: 8-bit text is not valid UTF-8, decoded as koi8-r, the charset of the message's text",
        )
        in parsed.defects
    )


def test_raw_file_name_uses_the_charset_of_the_text_parts():
    name = "Übersicht für Köln.pdf".encode("cp850")
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=cp850\r\n\r\nAnbei.\r\n"
        b'--b\r\nContent-Type: application/pdf; name="' + name + b'"\r\n\r\n%PDF\r\n--b--\r\n'
    )
    assert [a.filename for a in parse_message(raw).attachments] == ["Übersicht für Köln.pdf"]


def test_raw_header_bytes_without_a_declared_charset_are_detected_for_other_scripts():
    subject = "Приглашение на совещание по бюджету".encode("cp1251")
    assert headers(b"Subject: " + subject).subject == "Приглашение на совещание по бюджету"


@pytest.mark.parametrize("word", ["Frösche", "Grüße", "Prüfbericht März", "señor", "Zürich"])
def test_short_latin_header_bytes_fall_back_to_windows_1252(word: str):
    # A detector picks cp1006 or cp1250 for a few Latin bytes; those are not taken.
    assert headers(b"Subject: " + word.encode("cp1252")).subject == word


def test_utf8_header_bytes_are_utf8_whatever_the_text_declares():
    parsed = headers(
        "Subject: Grüße".encode(), content_type=b"text/plain; charset=iso-8859-1", body=b"x"
    )
    assert (parsed.subject, parsed.defects) == ("Grüße", ())


def test_raw_iso2022jp_in_a_header():
    parsed = headers(b"Subject: \x1b$BDjNc2q5D-!\x1b(B")
    assert parsed.subject == "定例会議①"


# Invisible format characters


@pytest.mark.parametrize("hidden", ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"])
def test_invisible_characters_in_names_and_file_names(hidden: str):
    encoded = f"=?utf-8?b?{base64.b64encode(f'Rech{hidden}nung'.encode()).decode()}?="
    raw = (
        f"From: {encoded} <r@example.com>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        f'--b\r\nContent-Type: application/pdf; name="{encoded}.pdf"\r\n\r\nx\r\n--b--\r\n'
    ).encode()
    parsed = parse_message(raw)
    assert parsed.addresses[0].name == "Rechnung"
    assert [a.filename for a in parsed.attachments] == ["Rechnung.pdf"]


# Header parameters with a missing ";"


def test_boundary_on_a_continuation_line_without_semicolon_is_recovered():
    raw = (
        b'From: a@example.com\r\nContent-Type: multipart/mixed\r\n boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nLieferschein anbei\r\n"
        b"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment\r\n"
        b'\tfilename="Lieferschein.pdf"\r\n\r\n%PDF\r\n--b1--\r\n'
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "Lieferschein anbei"
    assert [(a.path, a.filename, a.data) for a in parsed.attachments] == [
        ("2", "Lieferschein.pdf", b"%PDF")
    ]
    assert parsed.defects == (
        Defect(
            DefectKind.HEADER_MALFORMED, "", "content-type: missing ';' before boundary, recovered"
        ),
        Defect(
            DefectKind.HEADER_MALFORMED,
            "2",
            "content-disposition: missing ';' before filename, recovered",
        ),
    )


@pytest.mark.parametrize(
    ("value", "params"),
    [
        ('application/pdf; name="a b.pdf" size=12', {"name": "a b.pdf", "size": "12"}),
        ("text/plain; charset=utf-8 format=flowed", {"charset": "utf-8", "format": "flowed"}),
        ("text/plain; name=My File.pdf", {"name": "My File.pdf"}),  # no "=": one value
        ('text/plain; a="x=y z=w"', {"a": "x=y z=w"}),  # inside quotes: one value
    ],
)
def test_missing_semicolon_between_parameters(value: str, params: dict[str, str]):
    field = params_parse(value)
    assert field is not None and field.params == params


def test_nul_in_a_header_is_replaced_and_recorded():
    parsed = headers(b"Subject: Rech\x00nung =?utf-8?q?A=00B?=")
    assert parsed.subject == "Rech\ufffdnung A\ufffdB"
    assert parsed.defects == (
        Defect(DefectKind.TEXT_REPLACED, None, "Subject: 2 NUL characters replaced"),
    )


def test_space_inside_an_unquoted_encoded_word_parameter_is_not_a_missing_semicolon():
    field = params_parse("application/pdf; name==?utf-8?q?Hello World=2Epdf?=")
    assert field is not None and field.params == {"name": "Hello World.pdf"}
