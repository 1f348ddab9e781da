"""archive.mime: bytes -> ParsedMessage, on the real-world corpus and on hand-built messages.

No network, no database. Hostile inputs assert outcomes (what was cut, which defect was
recorded), not timings; a quadratic regression shows up as a hang caught by pytest-timeout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import archive.mime
from archive.mime import (
    Address,
    Attachment,
    Defect,
    DefectKind,
    HeaderField,
    ParsedMessage,
    ParseLimits,
    parse_message,
)
from tests.support.corpus import CORPUS, CORPUS_FILES, corpus_params

# Skips without the corpus, or fails when MAILARCHIVE_REQUIRE_CORPUS is set (CI).
NO_CORPUS = pytest.mark.usefixtures("corpus")


def _corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


_ANY = object()


def _defects(
    parsed: ParsedMessage, kind: DefectKind, part_path: object = _ANY, detail: str = ""
) -> list[Defect]:
    """Defects of `kind` (at `part_path`, if given) whose detail contains `detail`."""
    return [
        defect
        for defect in parsed.defects
        if defect.kind is kind
        and (part_path is _ANY or defect.part_path == part_path)
        and detail in defect.detail
    ]


def _header(parsed: ParsedMessage, name: str) -> str:
    (value,) = [field.value for field in parsed.headers if field.name == name]
    return value


def _multipart(boundary: str, *parts: bytes, subtype: str = "mixed", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    if close:
        body += b"--" + boundary.encode() + b"--\r\n"
    return (
        b"From: sender@example.org\r\nSubject: test\r\nMIME-Version: 1.0\r\n"
        + f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
        + body
    )


PDF = b"%PDF-1.4 fake pdf \x00\x01\x02\xff"


# The public API and its values


def test_public_api_is_pinned():
    assert sorted(archive.mime.__all__) == sorted(
        [
            "Address",
            "Attachment",
            "Defect",
            "DefectKind",
            "Envelope",
            "HeaderField",
            "PARSER_VERSION",
            "ParseLimits",
            "ParsedMessage",
            "parse_message",
        ]
    )


def test_attachment_hash_and_size_are_of_the_data():
    attachment = Attachment("1", "a.bin", "application/octet-stream", None, None, PDF)
    assert attachment.sha256 == hashlib.sha256(PDF).hexdigest()
    assert attachment.size == len(PDF)
    assert "fake pdf" not in repr(attachment)
    with pytest.raises(AttributeError):
        attachment.data = b"other"  # type: ignore[misc]


@pytest.mark.parametrize("field", ["max_parts", "max_header_bytes", "max_text_chars"])
def test_parse_limits_reject_nonsense(field):
    with pytest.raises(ValueError, match=field):
        ParseLimits(**{field: 0})


# The corpus: 71 real messages, many malformed


@NO_CORPUS
def test_corpus_has_messages():
    assert CORPUS_FILES, f"{CORPUS} holds no .eml files"


@NO_CORPUS
@pytest.mark.parametrize("path", corpus_params())
def test_corpus_message_parses_stably(path: Path):
    raw = path.read_bytes()
    first = parse_message(raw)
    second = parse_message(raw)
    assert isinstance(first, ParsedMessage)
    assert first.part_count >= 1
    assert [a.sha256 for a in first.attachments] == [a.sha256 for a in second.attachments]
    assert first == second
    for attachment in first.attachments:
        assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
        assert attachment.content_type == attachment.content_type.lower()
        assert attachment.content_type.count("/") == 1
    paths = [attachment.path for attachment in first.attachments]
    assert len(paths) == len(set(paths))
    assert all(isinstance(d.kind, DefectKind) and len(d.detail) < 1000 for d in first.defects)


@NO_CORPUS
def test_corpus_enclosed_message_is_kept_byte_for_byte():
    raw = _corpus("flanker/enclosed.eml")
    parsed = parse_message(raw)
    (enclosed,) = [a for a in parsed.attachments if a.content_type == "message/rfc822"]
    assert enclosed.path == "2"
    assert enclosed.data in raw
    assert enclosed.data.startswith(b"Content-Type: multipart/alternative;")
    # The enclosed message's text is searchable through the outer message.
    assert "kicking ass" in parsed.body_text.lower()


@NO_CORPUS
def test_corpus_endless_enclosure_stops_at_part_limit():
    parsed = parse_message(_corpus("flanker/enclosed-endless.eml"))
    assert parsed.part_count == 1000
    assert _defects(parsed, DefectKind.PART_LIMIT, None)


@NO_CORPUS
def test_corpus_wrong_boundary_is_recovered():
    parsed = parse_message(_corpus("spamscope/mail_malformed_3.eml"))
    assert Defect(DefectKind.MISSING_BOUNDARY, "", "StartBoundaryNotFoundDefect") in parsed.defects
    assert _defects(parsed, DefectKind.MISSING_BOUNDARY, "", "declared boundary not found")
    assert "Recibo de Luz" in parsed.subject
    assert "PGh0bWw" not in parsed.body_text  # the base64 was decoded, not read as text
    assert parsed.body_text


@NO_CORPUS
def test_corpus_utf8_body_with_one_bad_byte_is_not_read_as_chinese():
    parsed = parse_message(_corpus("spamscope/mail_test_6.eml"))
    assert "письмо" in parsed.body_text
    assert _defects(parsed, DefectKind.CHARSET_INVALID, "1", "utf-8 with replacement characters")


# Headers


def test_rfc2047_subject_is_decoded():
    raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody\r\n"
    parsed = parse_message(raw)
    assert parsed.subject == "Grüße"
    assert parsed.headers == (HeaderField("Subject", "Grüße"),)


def test_adjacent_encoded_words_join_split_characters():
    # "€" (E2 82 AC) split across two base64 encoded-words; the space between is dropped.
    raw = b"Subject: =?UTF-8?B?4oI=?=\r\n =?UTF-8?B?rA==?= Preis\r\n\r\n"
    assert parse_message(raw).subject == "€ Preis"


def test_headers_keep_order_names_and_raw_8bit_text():
    raw = (
        b"Received: from a\r\n\tby b\r\nX-Note: caf\xc3\xa9\r\nX-Old: caf\xe9\r\n"
        b"Subject:   many    spaces\r\n\r\n"
    )
    parsed = parse_message(raw)
    assert [h.name for h in parsed.headers] == ["Received", "X-Note", "X-Old", "Subject"]
    assert _header(parsed, "Received") == "from a\tby b"
    assert _header(parsed, "X-Note") == "café"
    assert _header(parsed, "X-Old") == "café"
    assert _defects(parsed, DefectKind.HEADER_8BIT, None, "X-Old: 8-bit text is not valid UTF-8")
    assert parsed.subject == "many spaces"


def test_addresses_are_lower_cased_with_decoded_names():
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.ORG>\r\n"
        b"Sender: list-bounces@Lists.Example.org\r\n"
        b'To: "Doe, Jane" <JANE@example.com>, bob@example.net (Bob B.)\r\n'
        b"Cc: Team: Ann <ann@example.com>, carl@example.com;\r\n"
        b"Bcc: undisclosed-recipients:;\r\n"
        b"Reply-To: MAILER-DAEMON\r\n\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.addresses == (
        Address("from", "Jürgen Müller", "juergen@example.org"),
        Address("sender", "", "list-bounces@lists.example.org"),
        Address("reply-to", "MAILER-DAEMON", ""),
        Address("to", "Doe, Jane", "jane@example.com"),
        Address("to", "Bob B.", "bob@example.net"),
        Address("cc", "Ann", "ann@example.com"),
        Address("cc", "", "carl@example.com"),
    )
    assert _defects(parsed, DefectKind.BAD_ADDRESS, None, "reply-to: no address in 'MAILER-DAEMON'")


def test_hostile_address_headers_do_not_recurse():
    # email.utils.getaddresses raises RecursionError on these.
    raw = b"To: " + b"(" * 50_000 + b"\r\nCc: " + b":" * 50_000 + b"\r\n\r\n"
    parsed = parse_message(raw)
    assert parsed.addresses == (Address("to", "(" * 50_000, ""),)
    assert _defects(parsed, DefectKind.BAD_ADDRESS, None, "to: no address in '(((")
    assert not _defects(parsed, DefectKind.PARSE_FAILED)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 14 Jul 2015 12:19:08 +0800", datetime(2015, 7, 14, 4, 19, 8, tzinfo=UTC)),
        ("14 Jul 2015 12:19:08 -0000", datetime(2015, 7, 14, 12, 19, 8, tzinfo=UTC)),
        ("Tue, 14 Jul 2015 12:19:08", datetime(2015, 7, 14, 12, 19, 8, tzinfo=UTC)),
        ("Tue, 14 Jul 15 12:19 EST", datetime(2015, 7, 14, 17, 19, tzinfo=UTC)),
        ("2015-07-14T12:19:08+02:00", datetime(2015, 7, 14, 10, 19, 8, tzinfo=UTC)),
    ],
)
def test_date_is_parsed_timezone_aware(value, expected):
    parsed = parse_message(f"Date: {value}\r\n\r\n".encode())
    assert parsed.sent_at == expected
    assert parsed.sent_at is not None and parsed.sent_at.tzinfo is not None
    assert parsed.defects == ()


def test_date_keeps_the_senders_offset():
    parsed = parse_message(b"Date: Tue, 14 Jul 2015 12:19:08 +0800\r\n\r\n")
    assert parsed.sent_at is not None
    assert parsed.sent_at.utcoffset() == timedelta(hours=8)
    assert parsed.sent_at.tzinfo == timezone(timedelta(hours=8))


@pytest.mark.parametrize("value", ["yesterday", "Mon, 31 Feb 2017 05:12:54 +0000", ""])
def test_unparseable_date_is_none_with_defect(value):
    parsed = parse_message(f"Date: {value}\r\nSubject: s\r\n\r\n".encode())
    assert parsed.sent_at is None
    assert _defects(parsed, DefectKind.BAD_DATE, None, "Date: unparseable")
    assert parsed.subject == "s"


def test_message_ids():
    raw = (
        b"Message-ID:  <abc.123@Example.org> \r\n"
        b"In-Reply-To: Your message of Monday <parent@example.org> <other@example.org>\r\n"
        b"References: <root@example.org>\r\n <parent@example.org>\r\n\t<parent@example.org>\r\n\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.message_id == "abc.123@Example.org"
    assert parsed.in_reply_to == "parent@example.org"
    assert parsed.references == ("root@example.org", "parent@example.org")


def test_missing_headers_are_none():
    parsed = parse_message(b"\r\njust a body\r\n")
    assert (parsed.subject, parsed.message_id, parsed.in_reply_to) == (None, None, None)
    assert (parsed.sent_at, parsed.references, parsed.addresses) == (None, (), ())
    assert parsed.body_text == "just a body"


# Bodies


def test_html_only_body_drops_script_style_and_head():
    html = (
        b"<html><head><title>hidden title</title><style>p{color:red}</style></head>"
        b"<body><p>the <b>pangolin</b> appears</p><script>var hiddenscript=1</script>"
        b"<p>second&nbsp;paragraph &amp; more</p><!-- a comment --></body></html>"
    )
    raw = b"Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    parsed = parse_message(raw)
    assert parsed.body_text == "the pangolin appears\nsecond paragraph & more"
    assert parsed.attachments == ()


def test_alternative_takes_the_plain_part():
    raw = _multipart(
        "alt",
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nplain marmalade",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>html zebrafinch</p>",
        subtype="alternative",
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "plain marmalade"
    assert parsed.attachments == ()
    assert parsed.part_count == 3


def test_alternative_with_empty_plain_part_takes_the_html():
    raw = _multipart(
        "alt",
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n\r\n\r\n",
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>only in html</p>",
        subtype="alternative",
    )
    assert parse_message(raw).body_text == "only in html"


def test_alternative_with_related_html_keeps_images_as_attachments():
    related = (
        b'Content-Type: multipart/related; boundary="rel"\r\n\r\n'
        b"--rel\r\nContent-Type: text/html\r\n\r\n<p>rich <img src=cid:logo></p>\r\n"
        b"--rel\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x89PNG") + b"\r\n"
        b"--rel--"
    )
    raw = _multipart(
        "alt", b"Content-Type: text/plain\r\n\r\nplain version", related, subtype="alternative"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "plain version"
    (image,) = parsed.attachments
    assert (image.path, image.content_type, image.content_id) == ("2.2", "image/png", "logo")
    assert image.data == b"\x89PNG"


def test_inline_image_is_an_attachment():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    raw = _multipart(
        "rel",
        b"Content-Type: text/html\r\n\r\n<img src=cid:img1@example>",
        b"Content-Type: image/png; name=dot.png\r\nContent-Disposition: inline; filename=dot.png\r\n"
        b"Content-ID: <img1@example>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(png),
        subtype="related",
    )
    parsed = parse_message(raw)
    (image,) = parsed.attachments
    assert image == Attachment("2", "dot.png", "image/png", "inline", "img1@example", png)
    assert image.sha256 == hashlib.sha256(png).hexdigest()
    assert image.size == len(png)


def test_attachment_sha256_is_of_the_decoded_bytes():
    raw = _multipart(
        "mix",
        b"Content-Type: text/plain\r\n\r\nsee attached",
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF),
        b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=notes.txt\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe=\r\n!",
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "see attached"
    pdf, notes = parsed.attachments
    assert (pdf.path, pdf.filename, pdf.disposition, pdf.data) == ("2", "r.pdf", "attachment", PDF)
    assert pdf.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (notes.path, notes.filename, notes.data) == ("3", "notes.txt", "Grüße!".encode())
    assert notes.sha256 == hashlib.sha256("Grüße!".encode()).hexdigest()


def test_rfc2231_filename_continuation():
    raw = _multipart(
        "mix",
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC; filename*1*=rate.pdf\r\n"
        b"\r\n" + PDF,
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "€rate.pdf"


def test_rfc2047_filename_and_content_type_name():
    raw = _multipart(
        "mix", b'Content-Type: application/pdf; name="=?utf-8?q?R=C3=A9sum=C3=A9.pdf?="\r\n\r\nx'
    )
    (attachment,) = parse_message(raw).attachments
    assert (attachment.filename, attachment.disposition) == ("Résumé.pdf", None)


def test_mixed_rfc2231_params_do_not_crash_the_parser():
    # email.utils.decode_params sorts (None, ...) against (0, ...) and raises TypeError
    # from inside the stdlib parser for this Content-Type.
    raw = (
        b"Content-Type: multipart/mixed; boundary=b; a*=x; a*0=y\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nstill here\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "still here"
    assert not _defects(parsed, DefectKind.PARSE_FAILED)


def test_huge_quoted_parameter_is_cut_not_parsed_quadratically():
    # The stdlib's _parseparam needs tens of seconds for this value.
    raw = (
        b'Content-Type: multipart/mixed; boundary=b; junk="' + b";" * 300_000 + b'"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nbody text\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "body text"
    assert _defects(parsed, DefectKind.HEADER_LIMIT, "", "content-type: parameters longer than")


def test_signature_of_signed_message_is_an_attachment():
    raw = _multipart(
        "sig",
        b"Content-Type: text/plain\r\n\r\nsigned words",
        b"Content-Type: application/pgp-signature; name=signature.asc\r\n\r\n"
        b"-----BEGIN PGP SIGNATURE-----\r\nabc\r\n-----END PGP SIGNATURE-----",
        subtype='signed; protocol="application/pgp-signature"; micalg=pgp-sha256',
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "signed words"
    (signature,) = parsed.attachments
    assert (signature.path, signature.content_type) == ("2", "application/pgp-signature")
    assert signature.data.startswith(b"-----BEGIN PGP SIGNATURE-----")


INNER = (
    b"From: Inner <Inner@Example.org>\r\nSubject: inner subject\r\n"
    b'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
    b"--in\r\nContent-Type: text/plain\r\n\r\nforwarded words\r\n"
    b"--in\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=inner.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PDF) + b"--in--\r\n"
)


def test_nested_message_is_an_attachment_and_its_parts_are_walked():
    raw = _multipart(
        "out",
        b"Content-Type: text/plain\r\n\r\nouter words",
        b"Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=fwd.eml\r\n\r\n"
        + INNER,
    )
    parsed = parse_message(raw)
    enclosed, inner_pdf = parsed.attachments
    assert (enclosed.path, enclosed.content_type, enclosed.filename) == (
        "2",
        "message/rfc822",
        "fwd.eml",
    )
    assert enclosed.data == INNER  # the original bytes, not a re-generated message
    assert (inner_pdf.path, inner_pdf.filename, inner_pdf.data) == ("2.2", "inner.pdf", PDF)
    assert parsed.body_text == "outer words\n\nforwarded words"
    assert parsed.subject == "test"  # the top-level message's, not the enclosed one's
    assert [a.role for a in parsed.addresses] == ["from"]
    assert parsed.part_count == 6  # root, 1, 2, the enclosed message's root, 2.1, 2.2
    assert parsed.defects == ()


def test_base64_encoded_nested_message_is_decoded_then_parsed():
    raw = _multipart(
        "out",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(INNER),
    )
    parsed = parse_message(raw)
    enclosed, inner_pdf = parsed.attachments
    assert enclosed.data == INNER
    assert (inner_pdf.path, inner_pdf.data) == ("1.2", PDF)
    assert parsed.body_text == "forwarded words"
    assert _defects(parsed, DefectKind.ENCLOSED_ENCODED, "1", "message/rfc822 with base64 encoding")


def test_single_part_nested_message_body_is_numbered_below_it():
    inner = b"Subject: inner\r\nContent-Type: image/gif\r\n\r\nGIF89a"
    raw = _multipart("out", b"Content-Type: message/rfc822\r\n\r\n" + inner)
    enclosed, gif = parse_message(raw).attachments
    assert (enclosed.path, enclosed.data) == ("1", inner)
    assert (gif.path, gif.content_type, gif.data) == ("1.1", "image/gif", b"GIF89a")


# Charsets and transfer encodings


def test_unknown_charset_is_guessed_with_defect():
    raw = (
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\n"
        + "Grüße aus München, schöne Tage!".encode()
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "Grüße aus München, schöne Tage!"
    assert parsed.defects == (
        Defect(DefectKind.CHARSET_UNKNOWN, "", "unknown charset 'x-unknown', decoded as utf-8"),
    )


def test_wrong_charset_falls_back_with_defect():
    text = "Приветствую вас, дорогие друзья! Это письмо на русском языке. " * 5
    raw = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text.encode("cp1251")
    parsed = parse_message(raw)
    assert parsed.body_text == text.strip()
    assert _defects(parsed, DefectKind.CHARSET_INVALID, "", "invalid 'us-ascii' text, decoded as")


def test_missing_charset_tries_utf8_then_guesses():
    utf8 = parse_message(b"Content-Type: text/plain\r\n\r\n" + "naïve café".encode())
    assert (utf8.body_text, utf8.defects) == ("naïve café", ())
    latin = parse_message(b"\r\n" + "Voilà, ça marche très bien à Noël.".encode("cp1252"))
    assert latin.body_text == "Voilà, ça marche très bien à Noël."
    assert _defects(latin, DefectKind.CHARSET_MISSING, "", "no charset declared")


def test_latin1_label_decodes_windows_1252_quotes():
    raw = b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\x93quoted\x94 \x80 caf\xe9"
    parsed = parse_message(raw)
    assert parsed.body_text == "\u201cquoted\u201d € café"
    assert parsed.defects == ()


def test_broken_base64_keeps_what_decodes():
    encoded = base64.b64encode(b"0123456789abcdef")  # 24 characters
    raw = _multipart(
        "mix",
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded[:9]
        + b"!!\r\n"
        + encoded[9:-3],  # damaged in the middle, cut mid-quantum at the end
    )
    parsed = parse_message(raw)
    (attachment,) = parsed.attachments
    assert attachment.data == b"0123456789abcde"
    assert _defects(parsed, DefectKind.BAD_BASE64, "1", "characters outside the alphabet ignored")
    assert _defects(parsed, DefectKind.BAD_BASE64, "1", "truncated")


def test_uuencoded_attachment_is_decoded():
    payload = bytes(range(200))
    lines = b"".join(binascii.b2a_uu(payload[i : i + 45]) for i in range(0, len(payload), 45))
    raw = _multipart(
        "mix",
        b"Content-Type: application/octet-stream; name=x.bin\r\n"
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x.bin\r\n" + lines + b"`\r\nend",
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.data == payload


# Malformed structure and limits


def test_missing_final_boundary_is_a_defect_and_body_survives():
    raw = _multipart(
        "b",
        b"Content-Type: text/plain\r\n\r\nfirst part",
        b"Content-Type: text/plain\r\n\r\nsecond part, never closed",
        close=False,
    )
    parsed = parse_message(raw)
    assert Defect(DefectKind.MISSING_FINAL_BOUNDARY, "", "CloseBoundaryNotFoundDefect") in (
        parsed.defects
    )
    assert parsed.body_text == "first part\n\nsecond part, never closed"


def test_multipart_without_usable_boundary_is_read_as_text():
    raw = b"Content-Type: multipart/mixed; boundary=nowhere\r\n\r\nsome plain words\r\n"
    parsed = parse_message(raw)
    assert parsed.body_text == "some plain words"
    assert Defect(DefectKind.MISSING_BOUNDARY, "", "StartBoundaryNotFoundDefect") in parsed.defects


def test_five_megabyte_header_is_cut_with_defect():
    limits = ParseLimits()
    raw = b"X-Long: " + b"a" * 5_000_000 + b"\r\nSubject: huge header\r\n\r\nbody\r\n"
    parsed = parse_message(raw, limits)
    assert _header(parsed, "X-Long") == "a" * limits.max_header_bytes
    assert Defect(
        DefectKind.HEADER_LIMIT,
        None,
        f"X-Long: 5000000 characters, cut to {limits.max_header_bytes}",
    ) in (parsed.defects)
    assert parsed.subject == "huge header"
    assert parsed.body_text == "body"


def _nested(depth: int) -> bytes:
    opening = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (level, level + 1)
        for level in range(depth)
    )
    innermost = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeepest words\r\n" % depth
    return (
        b'Subject: deep\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        + opening
        + innermost
    )


def test_500_nested_multiparts_stop_at_depth_limit():
    parsed = parse_message(_nested(500))
    assert parsed.subject == "deep"
    assert _defects(parsed, DefectKind.DEPTH_LIMIT, detail="nested deeper than 32 levels")
    assert "deepest words" not in parsed.body_text
    assert parsed.part_count == 33  # the root and 32 levels below it


def test_nesting_beyond_the_recursion_limit_keeps_headers():
    # With the depth limit lifted, the stdlib parser itself recurses until RecursionError.
    parsed = parse_message(_nested(5000), ParseLimits(max_depth=10_000, max_parts=100_000))
    assert parsed.subject == "deep"
    assert _defects(parsed, DefectKind.PARSE_FAILED, None, "RecursionError")
    assert parsed.part_count > 1


def test_part_limit():
    raw = _multipart("m", *[b"Content-Type: image/gif\r\n\r\nGIF%d" % i for i in range(20)])
    parsed = parse_message(raw, ParseLimits(max_parts=5))
    assert parsed.part_count == 5
    assert [a.path for a in parsed.attachments] == ["1", "2", "3", "4"]
    assert _defects(parsed, DefectKind.PART_LIMIT, None)


def test_body_text_limit():
    raw = _multipart(
        "m",
        b"Content-Type: text/plain\r\n\r\n" + b"x" * 80,
        b"Content-Type: text/plain\r\n\r\nyyyy",
    )
    parsed = parse_message(raw, ParseLimits(max_text_chars=85))
    assert parsed.body_text == "x" * 80 + "\n\nyyy"
    assert Defect(DefectKind.TEXT_LIMIT, None, "body text cut at 85 characters") in parsed.defects


def test_header_flood_is_kept_but_only_partly_decoded():
    fields = b"".join(b"X-%d: =?utf-8?q?caf=C3=A9?=\r\n" % n for n in range(12_000))
    parsed = parse_message(fields + b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nbody")
    assert len(parsed.headers) == 12_001
    assert parsed.headers[0] == HeaderField("X-0", "café")
    assert parsed.headers[-2] == HeaderField("X-11999", "=?utf-8?q?caf=C3=A9?=")
    assert parsed.subject == "Grüße"
    assert Defect(
        DefectKind.HEADER_LIMIT, None, "more than 10000 header fields, the rest not decoded"
    ) in (parsed.defects)


def test_defects_are_listed_once_and_capped():
    fields = b"".join(b"X-%d: caf\xe9\r\n" % n for n in range(2_000))
    parsed = parse_message(fields + b"Subject: =?x-nope?q?a?= =?x-nope?q?b?=\r\n\r\n")
    assert len(parsed.defects) == 501
    assert parsed.defects[0] == Defect(
        DefectKind.HEADER_8BIT, None, "X-0: 8-bit text is not valid UTF-8, decoded as cp1252"
    )
    assert parsed.defects[-1] == Defect(
        DefectKind.DEFECT_LIMIT, None, "1501 more defects not listed"
    )
    assert len(set(parsed.defects)) == len(parsed.defects)


@pytest.mark.parametrize("raw", [b"", b"\r\n", b"\x00\xff" * 10, b":", b"From nobody\n"])
def test_degenerate_input(raw):
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    assert parsed.attachments == ()
    assert parsed.part_count == 1


def test_random_damage_never_raises():
    sample = _multipart(
        "mix",
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "Grüße".encode(),
        b'Content-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes(PDF),
        b"Content-Type: message/rfc822\r\n\r\n" + INNER,
    )
    rng = random.Random(20240229)
    for _ in range(300):
        damaged = bytearray(sample)
        for _ in range(rng.randint(1, 12)):
            position = rng.randrange(len(damaged))
            damaged[position : position + rng.randint(0, 3)] = rng.choice(
                [b"", b"\r\n", b"--", b";", b'"', b"=?", b"\xff", b"--mix", b"(", b"<"]
            )
        parsed = parse_message(bytes(damaged))
        assert isinstance(parsed, ParsedMessage)
        assert not _defects(parsed, DefectKind.PARSE_FAILED)


def test_every_defect_kind_is_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "sql.md").read_text(encoding="utf-8")
    table = doc.split("## Defect kinds", 1)[1]
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M)
    assert documented == [kind.value for kind in DefectKind]


def test_stdlib_defects_are_mapped_to_kinds_and_named():
    from email import errors

    from archive.mime.defects import from_stdlib

    assert from_stdlib(errors.CloseBoundaryNotFoundDefect(), "2") == Defect(
        DefectKind.MISSING_FINAL_BOUNDARY, "2", "CloseBoundaryNotFoundDefect"
    )
    assert from_stdlib(errors.MessageDefect(), None).kind is DefectKind.MIME_MALFORMED


def test_a_defect_reads_as_its_kind_place_and_detail():
    assert str(Defect(DefectKind.BAD_BASE64, "2.1", "padding missing")) == (
        "bad_base64 (part 2.1): padding missing"
    )
    assert str(Defect(DefectKind.BAD_DATE, "", "x")) == "bad_date (message): x"
    assert str(Defect(DefectKind.PART_LIMIT, None, "x")) == "part_limit: x"
