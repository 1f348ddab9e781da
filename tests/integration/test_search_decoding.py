"""Words a reader sees are found by `archive.search`, from SQL (issue 11 §1).

The messages are the cases of tests/data/cases/ (copies of shared/cases/) and other inputs
of the same kinds, loaded through the real parser and index writer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from archive.index.database import make_engine
from tests.support import archive_data
from tests.support.archive_data import Mail
from tests.support.postgres import DatabaseFactory

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"


def _message(subject: bytes, content_type: bytes, body: bytes, cte: bytes = b"8bit") -> bytes:
    return (
        b"From: Sender <sender@example.com>\r\nTo: r@example.com\r\nSubject: " + subject
        + b"\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        + b"Content-Type: " + content_type + b"\r\nContent-Transfer-Encoding: " + cte
        + b"\r\n\r\n" + body + b"\r\n"
    )  # fmt: skip


_RUSSIAN = "Уважаемые коллеги, протокол совещания утверждён. Бухгалтерия подготовит отчёт.\n"
_DAMAGED = base64.encodebytes((_RUSSIAN * 6).encode())
_DAMAGED = _DAMAGED[:200] + b"!!@" + _DAMAGED[203:]  # three characters damaged, one place

SHAPES = {
    "qp-crlf": _message(
        b"QP", b"text/plain; charset=iso-8859-1", b"Gew=E4hrleistungs= \t\r\nanspruch", b"quoted-printable"
    ),
    "jis-ibm": _message(
        b"=?ISO-2022-JP?B?GyRCeSEbKEI=?=",  # 纊, an IBM extension (row 89)
        b"text/plain; charset=iso-2022-jp",
        b"\x1b$B-\"H/9T\x1b(B",  # ②発行
        b"7bit",
    ),
    "html-inline": _message(
        b"HTML", b"text/html; charset=utf-8", b"<p><b>Kunden</b><i>nummer</i> und Ab&shy;rech&#8203;nung</p>"
    ),
    "flowed": _message(
        b"Flowed", b"text/plain; charset=utf-8; format=flowed", b"Vertrags \r\nverl\xc3\xa4ngerung ist da."
    ),
    "flowed-delsp": _message(
        b"Flowed", b"text/plain; charset=utf-8; format=flowed; delsp=yes",
        b"Vertrags \r\nverl\xc3\xa4ngerung ist da.",
    ),
    "raw-subject": _message(
        b"Bericht \xfcber Fr\xf6sche", b"text/plain; charset=iso-8859-1", b"Text"
    ),
    "raw-in-word": _message(b"=?utf-8?q?Fr\xc3\xb6sche_im_Teich?=", b"text/plain", b"x"),
    "word-shapes": _message(
        b"=?utf-8?q?Jahres abschluss?= in =?UTF-8?B?S8O2?==?utf-8?B?bG4=?=-Messe",
        b"text/plain", b"y",
    ),
    "b64-damaged": _message(b"Damaged", b"text/plain; charset=utf-8", _DAMAGED, b"base64"),
    "b64-junk": _message(
        b"Junk",
        b"text/plain; charset=utf-8",
        base64.encodebytes("Grüße aus der Buchhaltung, Quartalsbericht anbei.".encode())
        + b"\r\n_______________________________________________\r\nListe mailing list\r\n",
        b"base64",
    ),
    "no-semicolon": (
        b"From: a@example.com\r\nSubject: Lieferung\r\nContent-Type: multipart/mixed\r\n"
        b' boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nWarenbegleitschein\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment\r\n"
        b' filename="Zollerklaerung.txt"\r\n\r\nUrsprungszeugnis\r\n--b1--\r\n'
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def archive(databases: DatabaseFactory) -> Iterator[Engine]:
    url = databases.create()
    engine = make_engine(url, pool_size=2)
    mails = tuple(
        Mail("cases", path.name.split("-")[0], path.read_bytes())
        for path in sorted(CASES.glob("*.eml"))
    ) + tuple(Mail("shapes", name, raw) for name, raw in SHAPES.items())
    archive_data.load(engine, mails)
    yield engine
    engine.dispose()
    databases.drop(url)


def found(engine: Engine, query: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT uidl FROM archive.search(:query, 100)"), {"query": query}
        ).all()
    return {row.uidl for row in rows}


@pytest.mark.parametrize(
    ("query", "uidl"),
    [
        ("auftragsbestatigung", "101"),
        ("lieferadresse", "101"),
        ("予算", "102"),
        ("定例会議", "102"),
        ("日程", "102"),
        ("willkommen", "103"),
        ("jahreshauptversammlung", "103"),
        ("tagesordnung", "103"),
        ("会議室", "104"),
        ("system", "104"),
        ("filename:prüfbericht", "106"),
        ("rechnung", "110"),
        ("RE-2026-0042", "110"),
        ("iban", "110"),
    ],
)
def test_case_words_are_found(archive: Engine, query: str, uidl: str):
    assert uidl in found(archive, query)


@pytest.mark.parametrize(
    ("query", "uidl"),
    [
        ("gewahrleistungsanspruch", "qp-crlf"),
        ("纊", "jis-ibm"),
        ("発行", "jis-ibm"),
        ("kundennummer", "html-inline"),
        ("abrechnung", "html-inline"),
        ('"vertrags verlangerung"', "flowed"),
        ("vertragsverlangerung", "flowed-delsp"),
        ("subject:frösche", "raw-subject"),
        ("subject:frösche", "raw-in-word"),
        ("subject:jahres", "word-shapes"),
        ("subject:köln", "word-shapes"),
        ("бухгалтерия", "b64-damaged"),
        ("quartalsbericht", "b64-junk"),
        ("warenbegleitschein", "no-semicolon"),
        ("ursprungszeugnis", "no-semicolon"),
        ("filename:zollerklaerung", "no-semicolon"),
    ],
)
def test_same_kinds_in_other_shapes_are_found(archive: Engine, query: str, uidl: str):
    assert uidl in found(archive, query)


def test_nothing_is_found_by_a_broken_form(archive: Engine):
    # What the index held before these kinds were decoded: escapes, mojibake, split words.
    for query in ("jahres haupt versammlung", "auftragsbestätig", "fr?sche", "$B"):
        assert not found(archive, query) & {"101", "102", "103", "raw-in-word"}
