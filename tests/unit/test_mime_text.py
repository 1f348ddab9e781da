"""Body text as a reader sees it (issue 11 §1): HTML words split by inline markup,
format=flowed, alternatives that say something else, invisible format characters.

The case files in tests/data/cases/ are copies of shared/cases/ (README.md there gives the
right values); the other inputs here are the same kinds in other shapes.
"""

from __future__ import annotations

import pytest

from archive.index.chunks import text_chunks
from archive.mime import Defect, DefectKind, parse_message
from archive.mime.flowed import unflow
from archive.mime.htmltext import html_to_text
from archive.mime.model import PartText
from tests.unit.test_mime_charsets import case, text_part

# Inline markup inside a word


def test_case_103_inline_markup_does_not_split_words():
    parsed = case("103-html-inline-split-words.eml")
    assert parsed.body_text == (
        "Willkommen zur Jahreshauptversammlung am 12. Dezember.\nDie Tagesordnung liegt bei."
    )


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (
            "<p><a href='x'>Rech</a><font color=red>nung</font> <i>bezahlt</i></p>",
            "Rechnung bezahlt",
        ),
        ("<div>Ein<u>heit</u>s<em>preis</em></div>", "Einheitspreis"),
        ("<p>eins</p><p>zwei</p>", "eins\nzwei"),
        ("<div>eins</div>zwei", "eins\nzwei"),
        ("eins<br>zwei<br/>drei", "eins\nzwei\ndrei"),
        ("<table><tr><td>Menge</td><td>Preis</td></tr></table>", "Menge\nPreis"),
        ("<ul><li>Apfel<li>Birne</ul>", "Apfel\nBirne"),
        ("<h1>Titel</h1>Text", "Titel\nText"),
        ("<span>a</span>\n  <span>b</span>", "a b"),
        ("Bild<img src='x.png'>unter", "Bild unter"),
    ],
)
def test_inline_elements_join_and_block_elements_separate(html: str, text: str):
    assert html_to_text(html, 1000).text == text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        # libxml2 would drop what follows </html>; a browser shows it.
        ("<html><body><p>Text</p></body></html>\r\nList footer", "Text\nList footer"),
        ("eins<html>zwei", "eins\nzwei"),  # a second <html> breaks the line, as before
        # <head> left open: what follows <title> is shown, the title is not.
        ("<head><title>Titel</title><textarea>Feld</textarea><body>Wort", "Feld\nWort"),
        ("<p>a</p><!-- hidden --><script>x=1</script><style>p{}</style>b", "a\nb"),
        ("&copy; AT&amp;T &nbsp;caf&#233;", "© AT&T café"),
    ],
)
def test_html_as_a_browser_shows_it(html: str, text: str):
    assert html_to_text(html, 1000).text == text


def test_html_nested_beyond_the_recursion_limit_and_empty_documents():
    deep = "<div>" * 20_000 + "tief" + "</div>" * 20_000
    assert html_to_text(deep, 100_000).text == "tief"
    assert html_to_text("", 1000).text == ""  # libxml2 refuses it; bs4 reads it
    assert html_to_text("<!-- only a comment -->", 1000).text == ""


@pytest.mark.usefixtures("corpus")
def test_html_converters_agree_on_the_corpus():
    # The lxml walk replaced bs4 over html.parser (still the fallback); on real mail they
    # must read every HTML part alike.
    import email
    from email.policy import compat32

    from archive.mime.htmltext import _bs4_lines, _lxml_lines
    from tests.support.corpus import CORPUS_FILES

    checked = 0
    for path in CORPUS_FILES:
        for part in email.message_from_bytes(path.read_bytes(), policy=compat32).walk():
            data = part.get_payload(decode=True)
            if part.get_content_type() != "text/html" or not isinstance(data, bytes):
                continue
            html = data.decode(part.get_content_charset() or "utf-8", "replace")
            assert [t for t in _lxml_lines(html) if t] == [t for t in _bs4_lines(html) if t]
            checked += 1
    assert checked >= 20


# format=flowed (RFC 3676)


def test_case_104_flowed_delsp_yes():
    parsed = case("104-flowed-delsp-yes.eml")
    assert parsed.body_text.splitlines()[2] == (
        "来月から本社五階の新しい会議室が使えます。予約は総務部まで。"
        "Please book it via the reservation system."
    )


def test_flowed_without_delsp_keeps_the_space():
    body = b"This paragraph was \r\nwrapped by the \r\nsender.\r\nNext line.\r\n"
    parsed = text_part(body, "text/plain; charset=utf-8; format=flowed")
    assert parsed.body_text == "This paragraph was wrapped by the sender.\nNext line."


def test_flowed_quotes_stuffing_and_signature():
    text = "> quoted and \n> flowed\n>> deeper\n From stuffed\nlast \n-- \nsig"
    assert unflow(text, delsp=False) == (
        "> quoted and flowed\n>> deeper\nFrom stuffed\nlast \n-- \nsig"
    )
    assert unflow("Bestell \nnummer", delsp=True) == "Bestellnummer"


def test_fixed_text_is_not_joined():
    parsed = text_part(b"line one \r\nline two", "text/plain; charset=utf-8")
    assert parsed.body_text == "line one \nline two"


# RFC 2231 sections that join into an RFC 2047 encoded-word


def test_case_106_rfc2231_sections_holding_an_encoded_word():
    parsed = case("106-rfc2231-sections-with-2047.eml")
    assert [a.filename for a in parsed.attachments] == ["Prüfbericht März 2026.pdf"]


def test_rfc2231_sections_with_base64_encoded_word_in_content_type_name():
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: application/pdf; name*0="=?utf-8?B?w5xiZXJ"; name*1="zaWNodC5wZGY=?="\r\n'
        b"\r\nx\r\n--b--\r\n"
    )
    assert [a.filename for a in parse_message(raw).attachments] == ["Übersicht.pdf"]


# Placeholder alternatives: every alternative that says something else is searchable


def test_case_110_html_alternative_beside_a_placeholder_is_kept():
    parsed = case("110-alternative-placeholder-plain.eml")
    assert parsed.body_text.startswith("Diese Nachricht ist im HTML-Format.")
    assert parsed.alternative_texts == (
        PartText(
            "2",
            "Ihre Rechnung RE-2026-0042 über 1.250,00 EUR ist am 15.12.2026 fällig.\n"
            "Zahlungsempfänger: Muster GmbH, IBAN DE02 1203 0000 0000 2020 51",
        ),
    )
    chunks = [(c.part_path, c.start_char) for c in text_chunks(parsed)]
    assert chunks == [("2", 0)]


def _alternative(*parts: tuple[str, str]) -> bytes:
    body = "".join(f"--a\r\nContent-Type: {ctype}\r\n\r\n{text}\r\n" for ctype, text in parts)
    return ("Content-Type: multipart/alternative; boundary=a\r\n\r\n" + body + "--a--\r\n").encode()


def test_alternative_saying_the_same_is_not_indexed_twice():
    parsed = parse_message(
        _alternative(
            ("text/plain; charset=utf-8", "Hello Bob, the meeting is at 10."),
            ("text/html; charset=utf-8", "<p>Hello <b>Bob</b>,</p><p>the meeting is at 10.</p>"),
        )
    )
    assert parsed.body_text == "Hello Bob, the meeting is at 10."
    assert parsed.alternative_texts == ()


def test_later_plain_alternative_and_nested_html_are_kept():
    raw = (
        b"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: text/plain\r\n\r\nfirst version\r\n"
        b"--a\r\nContent-Type: text/plain\r\n\r\nsecond version with corrections\r\n"
        b"--a\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/html\r\n\r\n<p>html version with pictures</p>\r\n"
        b"--r\r\nContent-Type: image/png\r\n\r\nPNG\r\n--r--\r\n--a--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_text == "first version"
    assert parsed.alternative_texts == (
        PartText("2", "second version with corrections"),
        PartText("3.1", "html version with pictures"),
    )


# Invisible format characters never split a word


@pytest.mark.parametrize(
    "hidden", ["\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "&shy;", "&#8203;",
               "&#x200B;", "&zwnj;", "&zwj;", "&NoBreak;"]
)  # fmt: skip
def test_invisible_characters_do_not_split_words(hidden: str):
    html = text_part(f"<p>Rech{hidden}nung</p>".encode(), "text/html; charset=utf-8")
    assert html.body_text == "Rechnung"
    if not hidden.startswith("&"):
        plain = text_part(f"Rech{hidden}nung".encode(), "text/plain; charset=utf-8")
        assert plain.body_text == "Rechnung"
        subject = parse_message(f"Subject: Rech{hidden}nung\r\n\r\nx".encode())
        assert subject.subject == "Rechnung"


def test_nul_in_text_is_replaced_and_recorded():
    parsed = text_part(b"before\x00after", "text/plain; charset=utf-8")
    assert parsed.body_text == "before\ufffdafter"
    assert parsed.defects == (Defect(DefectKind.TEXT_REPLACED, "", "1 NUL characters replaced"),)


def test_undeclared_alternative_uses_the_charset_its_sibling_declares():
    raw = (
        b"Content-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nSole luned\xec\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n<p>Sole gioved\xec e venerd\xec</p>\r\n--a--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.alternative_texts == (PartText("2", "Sole giovedì e venerdì"),)
    assert parsed.defects == ()
