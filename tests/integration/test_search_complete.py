"""archive.search from SQL: words a person types find what they see (addresses, URLs, paths,
file names, text in angle brackets), and results are complete, paged and counted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from archive.index.database import make_engine
from archive.index.ledger import IndexWriter
from archive.index.search import RANK_WINDOW, QueryError, count, search, search_page
from archive.mime import parse_message
from tests.support.postgres import DatabaseFactory


def _raw(
    subject: str,
    body: str,
    *,
    sender: str = "Alice <alice@example.com>",
    to: str = "team@example.com",
    cc: str = "",
    attachment: str | None = None,
    day: int = 1,
) -> bytes:
    head = (
        f"From: {sender}\r\nTo: {to}\r\n"
        + (f"Cc: {cc}\r\n" if cc else "")
        + f"Subject: {subject}\r\nDate: Mon, {day:02d} Jun 2026 10:00:00 +0000\r\n"
        + "MIME-Version: 1.0\r\n"
    )
    if attachment is None:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n").encode()
    return (
        head + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n--B\r\n"
        f'Content-Type: application/octet-stream; name="{attachment}"\r\n'
        f'Content-Disposition: attachment; filename="{attachment}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--B--\r\n"
    ).encode()


# uidl -> message: each holds one kind of token that PostgreSQL's parser keeps whole or drops.
MAILS = {
    "addr": _raw("Supplier", "Orders go to purchasing@aquillaindustries.com from now on."),
    "draft": _raw("IETF", "See draft-ietf-mboned-mix-00.txt, then press /button twice."),
    "url": _raw("Tracker", "Filed at https://git.example.org/team/widgetron/issues/42 today."),
    "angle": _raw("Bounce", "Please mail to <postmaster> about it."),
    "plist": _raw(
        "Plist",
        '<?xml version="1.0"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN">\n<dict/>',
    ),
    "file": _raw(
        "Numbers", "Attached.", attachment="Zanzibar_Forecast-2026.xlsx", sender="x@example.net"
    ),
    "host": _raw("Outage", "The relay mx-7.quorvant.example was down."),
    "long": _raw("Log", "start " * 20_000 + "then ops@zorblatt.example answered"),
    "plain": _raw("Control", "Nothing special here: purchasing and forecast, button, mix."),
    # A bare address finds mail from, to or cc'ing it, and mail that mentions it.
    "from": _raw("Hello", "hi", sender="Dana <dana@vendor.example>"),
    "to": _raw("Hello", "hi", to="Dana <DANA@vendor.example>"),
    "cc": _raw("Hello", "hi", cc="dana@vendor.example"),
    "other": _raw("Hello", "hi", to="dan@vendor.example"),
}


def _record(engine: Engine, mailbox: str, mails: dict[str, bytes]) -> None:
    with IndexWriter(engine).mailbox(mailbox, "pop.example.com", "u") as index:
        for uidl, raw in mails.items():
            digest = hashlib.sha256(raw).hexdigest()
            index.record((uidl.encode(), 0), digest, len(raw), parse_message(raw))


@pytest.fixture(scope="module")
def tokens(databases: DatabaseFactory) -> Iterator[Engine]:
    url = databases.create()
    engine = make_engine(url, pool_size=2)
    _record(engine, "box", MAILS)
    yield engine
    engine.dispose()
    databases.drop(url)


def sql_uidls(engine: Engine, query: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT uidl FROM archive.search(:q, 100)"), {"q": query})
        return set(rows.scalars())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("aquillaindustries", {"addr"}),
        ("purchasing@aquillaindustries.com", {"addr"}),
        ("aquillaindustries.com", {"addr"}),
        ("purchasing", {"addr", "plain"}),
        ("mboned", {"draft"}),
        ("draft-ietf-mboned-mix-00.txt", {"draft"}),
        ("mboned-mix", {"draft"}),
        ("ietf mix", {"draft"}),
        ("button", {"draft", "plain"}),
        ("/button", {"draft", "plain"}),  # the whole path, or its one part: the word
        ("widgetron", {"url"}),
        ("git.example.org", {"url"}),
        ("https://git.example.org/team/widgetron/issues/42", {"url"}),
        ("quorvant", {"host"}),
        ("mx-7.quorvant.example", {"host"}),
        ("postmaster", {"angle"}),
        ('"mail to postmaster"', {"angle"}),
        ("doctype plist", {"plist"}),
        ("apple", {"plist"}),
        ("zanzibar", {"file"}),
        ("forecast", {"file", "plain"}),
        ("zanzibar_forecast-2026.xlsx", {"file"}),
        ("zorblatt", {"long"}),  # past the first 100,000 characters: in a text chunk
        ("subject:plist", {"plist"}),
        ("dana@vendor.example", {"from", "to", "cc"}),
        ("dana@vendor.example -cc:dana", {"from", "to"}),
        ("ops@zorblatt.example", {"long"}),
    ],
)
def test_words_inside_tokens_are_found_from_sql(tokens: Engine, query: str, expected: set[str]):
    assert sql_uidls(tokens, query) == expected
    assert count(tokens, query) == len(expected)


def test_filename_words_stay_out_of_subject_search(tokens: Engine):
    assert sql_uidls(tokens, "subject:zanzibar") == set()
    assert sql_uidls(tokens, "filename:zanzibar") == {"file"}


# Paging: 30 matches over two mailboxes (one message in both), one only in a text chunk.
PAGED = {
    f"p{n:02d}": _raw(f"Report {n}", f"weekly tally number {n}", day=n % 28 + 1) for n in range(28)
} | {
    "chunk": _raw("Long", "filler " * 20_000 + "weekly tally far down", day=15),
    "miss": _raw("Other", "nothing to see", day=2),
}


@pytest.fixture(scope="module")
def paged(databases: DatabaseFactory) -> Iterator[Engine]:
    url = databases.create()
    engine = make_engine(url, pool_size=2)
    _record(engine, "first", PAGED)
    _record(engine, "second", {"again": PAGED["p05"]})
    yield engine
    engine.dispose()
    databases.drop(url)


def test_pages_hold_every_match_newest_first_and_the_count_agrees(paged: Engine):
    rows = []
    with paged.connect() as conn:
        total = conn.execute(text("SELECT archive.search_count('weekly tally')")).scalar()
        for offset in range(0, 40, 7):
            rows += conn.execute(
                text(
                    "SELECT mailbox, uidl, sent_at FROM "
                    "archive.search('weekly tally', 7, row_offset => :offset)"
                ),
                {"offset": offset},
            ).all()
    assert total == 30 == len(rows)
    assert {uidl for _, uidl, _ in rows} == set(PAGED) - {"miss"} | {"again"}
    assert len(set(rows)) == 30
    dates = [sent_at for _, _, sent_at in rows]
    assert dates == sorted(dates, reverse=True)


def test_relevance_order_pages_too(paged: Engine):
    first = search(paged, "weekly tally", 10, 0, "relevance")
    rest = search(paged, "weekly tally", 30, 10, "relevance")
    assert len(first) == 10 and len(rest) == 20
    assert {(h.mailbox, h.uidl) for h in first} & {(h.mailbox, h.uidl) for h in rest} == set()
    ranks = [h.rank for h in first + rest]
    assert ranks == sorted(ranks, reverse=True)


def test_field_only_queries_page_and_count(paged: Engine):
    page = search_page(paged, "mailbox:first", 20, 20)
    assert page.total == 30 and len(page.hits) == 10


@pytest.mark.parametrize(
    ("limit", "offset", "order", "message"),
    [
        (10, -1, "newest", "row_offset must be 0 or more"),
        (10, 0, "oldest", "order_by must be"),
    ],
)
def test_bad_paging_is_a_query_error(
    paged: Engine, limit: int, offset: int, order: str, message: str
):
    with pytest.raises(QueryError, match=message):
        search(paged, "weekly", limit, offset, order)  # type: ignore[arg-type]


def test_reader_role_can_count(paged: Engine):
    with paged.connect() as conn:
        conn.execute(text("SET ROLE archive_reader"))
        assert conn.execute(text("SELECT archive.search_count('tally')")).scalar() == 30
        conn.rollback()


# More matches than relevance order ranks: written straight into the tables (fast).
MANY = RANK_WINDOW + 234
_MANY_SQL = """
INSERT INTO mailarchive.mailbox (name, host, username) VALUES ('bulk', 'pop.example.com', 'u');
INSERT INTO mailarchive.message (sha256, size, subject, sent_at, has_attachments, body_text)
SELECT encode(sha256(convert_to('m' || i, 'UTF8')), 'hex'), 100, 'update ' || i,
       timestamptz '2020-01-01' + i * interval '1 day', false, 'an update, number ' || i
FROM generate_series(1, {many}) i;
INSERT INTO mailarchive.delivery (mailbox_id, uidl, uidl_octets, message_id)
SELECT b.id, 'u' || m.id, convert_to('u' || m.id, 'UTF8'), m.id
FROM mailarchive.message m, mailarchive.mailbox b
"""


@pytest.fixture(scope="module")
def many(databases: DatabaseFactory) -> Iterator[Engine]:
    url = databases.create()
    engine = make_engine(url, pool_size=2)
    with engine.begin() as conn:
        for statement in _MANY_SQL.format(many=MANY).split(";"):
            conn.execute(text(statement))
    yield engine
    engine.dispose()
    databases.drop(url)


def test_every_match_comes_back_even_beyond_the_ranking_window(many: Engine):
    hits = search(many, "update", 10_000)
    assert len(hits) == MANY == count(many, "update")
    assert hits[0].subject == f"update {MANY}" and hits[-1].subject == "update 1"


def test_relevance_order_says_it_ranked_a_window(many: Engine):
    notices: list[str] = []
    with many.connect() as conn:
        conn.connection.driver_connection.add_notice_handler(  # type: ignore[union-attr]
            lambda diag: notices.append(diag.message_primary or "")
        )
        ranked = conn.execute(
            text("SELECT count(*) FROM archive.search('update', 10000, order_by => 'relevance')")
        ).scalar()
        assert notices == ["relevance order ranked only the 1,000 most recent matches"]
        conn.execute(text("SELECT count(*) FROM archive.search('update', 10000)")).scalar()
        conn.execute(
            text("SELECT count(*) FROM archive.search('number 7', 10, order_by => 'relevance')")
        ).scalar()
    assert ranked == RANK_WINDOW
    assert len(notices) == 1  # newest first is complete; a rare word fits the window


def test_cli_says_how_many_and_pages(many: Engine, monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from archive.app.cli import app

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", many.url.render_as_string(False))
    runner = CliRunner()
    table = runner.invoke(app, ["search", "update"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert f"showing 20 of {MANY:,}, newest first; --offset 20 for more" in table.stdout

    ranked = runner.invoke(app, ["search", "--relevance", "update"], terminal_width=200)
    assert "among the 1,000 most recent matches" in ranked.stdout

    result = runner.invoke(app, ["search", "--json", "-n", "500", "--offset", "1000", "update"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["total"] == MANY and payload["offset"] == 1000
    assert len(payload["results"]) == MANY - 1000
    assert payload["results"][-1]["subject"] == "update 1"
