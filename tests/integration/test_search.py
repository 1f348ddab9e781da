"""archive.search(): the query language, multilingual matching, limits and the reader role."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from archive.index.search import QueryError, search


@pytest.fixture(scope="session")
def loaded(loaded_archive: Engine) -> Engine:
    return loaded_archive


def uidls(engine: Engine, query: str) -> set[str]:
    return {hit.uidl for hit in search(engine, query, 100)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("quarterly", {"s1", "s2", "s3"}),
        ("quarterly numbers", {"s2"}),
        ('"report budget"', {"s1", "s2", "s3"}),
        ('"budget report"', set()),
        ("numbers OR ship", {"s2", "s3"}),
        ("quarterly -numbers", {"s1", "s3"}),
        ("grusse", {"s1"}),
        ("GRÜSSE", {"s1"}),
        ("jurgen", {"s1"}),
        ("москвы", {"u1"}),
        ("ПЯТНИЦУ", {"u1"}),
        ("καλημερα", {"u2"}),
        ("Τρίτη", {"u2"}),
        ("ecole", {"u4"}),
        ("réunion", {"u4"}),
        ("donde biblioteca", {"u4"}),
        ("東京", {"u3"}),
        ("会議", {"u3"}),
        ("zebrafinale", {"a1"}),
        ("from:juergen", {"s1", "s3"}),
        ("from:muller", {"s1", "s3"}),
        ("from:juergen@example.de", {"s1", "s3"}),
        ("to:juergen@example.de", {"s2"}),
        ("cc:carol", {"s2"}),
        ("subject:invoice", {"s4", "u5", "u6"}),
        ("subject:report -from:alice", {"s1", "s3"}),
        ("filename:invoice-2026", {"s4", "u5", "u6"}),
        ("filename:.csv mailbox:support", {"u5", "u6"}),
        ("has:attachment", {"s4", "u5", "u6"}),
        ("sprockets", {"s4", "u5", "u6"}),  # inside the CSV attachment
        ("invoice sprockets", {"s4", "u5", "u6"}),  # subject + attachment text
        ("before:2026-03-01", {"u1", "u2", "u3"}),
        ("after:2026-04-01", {"a1", "a2", "a3"}),
        ("after:2026-03-02 before:2026-03-04", {"s1", "s2"}),
        ("larger:1M", {"a1"}),
        ("smaller:1M quarterly", {"s1", "s2", "s3"}),
        ("from:alice OR from:ivan", {"s2", "u1"}),
        ("from:juergen@exa", {"s1", "s3"}),
        ("from:@example.de", {"s1", "s3"}),
        ("mailbox:support invoice", {"u5", "u6"}),
        ("mailbox:sales quarterly -numbers", {"s1", "s3"}),
        ("mailbox:archive offsite", {"a2", "a3"}),
        ("http://example.com", set()),
        ("100%", {"a3"}),
        ("'quotes'", {"a3"}),
    ],
)
def test_query_language(loaded: Engine, query: str, expected: set[str]):
    assert uidls(loaded, query) == expected


def test_results_are_ranked_with_snippet(loaded: Engine):
    hits = search(loaded, "quarterly report")
    assert hits[0].subject is not None and "Quarterly" in hits[0].subject
    assert all(hit.rank > 0 for hit in hits)
    first = next(hit for hit in hits if hit.uidl == "s1")
    assert first.snippet is not None and "**report**" in first.snippet
    assert first.from_address == "juergen@example.de"


def test_word_at_the_end_of_a_5_mb_body_has_a_snippet(loaded: Engine):
    (hit,) = search(loaded, "zebrafinale")
    assert hit.snippet is not None and "**zebrafinale**" in hit.snippet


def test_same_message_in_two_mailboxes_is_two_hits(loaded: Engine):
    hits = search(loaded, "subject:march")
    assert sorted(hit.mailbox for hit in hits) == ["sales", "support"]
    assert len({hit.id for hit in hits}) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('"unterminated', "unterminated quote"),
        ("form:alice", "unknown field"),
        ("from:", "needs a value"),
        ("OR budget", "OR needs a term"),
        ("budget OR", "OR needs a term"),
        ("a OR OR b", "OR needs a term"),
        ("before:2026-02-30", "expects a date"),
        ("after:yesterday", "expects a date"),
        ("larger:5X", "expects a size"),
        ("has:spam", "has:spam is not known"),
        ("!!! ???", "no word or field"),
        ("x" * 10_000, "too long"),
        (" ".join(f"w{i}" for i in range(33)), "more than 32 terms"),
        ("from:ab " * 11, "more than 10 field terms"),
    ],
)
def test_malformed_queries_say_what_is_wrong(loaded: Engine, query: str, message: str):
    with pytest.raises(QueryError, match=message):
        search(loaded, query)


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE mailarchive.message; --",
        "budget'); DELETE FROM mailarchive.message; --",
        "\\",
        "\\\\' \\\"",
        "$1 $2[1] %s %L ::tsquery",
        "a & b | !c <-> d:* ",
        "from:'%' filename:_",
        'subject:"\'"',
        "é" * 999,
        "nul\x00byte",
    ],
)
def test_hostile_queries_are_results_or_query_errors(loaded: Engine, query: str):
    try:
        search(loaded, query)
    except QueryError:
        pass
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM mailarchive.message")).scalar() == 12


def test_limit_is_checked_and_applied(loaded: Engine):
    assert len(search(loaded, "quarterly", 2)) == 2
    with pytest.raises(QueryError, match="max_rows"):
        search(loaded, "quarterly", 0)


def test_same_function_from_plain_sql(loaded: Engine):
    with loaded.connect() as conn:
        rows = (
            conn.execute(text("SELECT uidl FROM archive.search('from:muller ship')"))
            .scalars()
            .all()
        )
    assert rows == ["s3"]


def test_reader_role_can_search_and_read_but_not_write(loaded: Engine):
    with loaded.connect() as conn:
        conn.execute(text("SET ROLE archive_reader"))
        assert conn.execute(text("SELECT count(*) FROM archive.search('budget')")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM archive.messages")).scalar() == 13
        for statement in (
            "DELETE FROM archive.addresses",
            "UPDATE mailarchive.message SET subject = 'x'",
            "SELECT count(*) FROM mailarchive.message",
            "INSERT INTO mailarchive.mailbox (name, host, username) VALUES ('x', 'x', 'x')",
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                with conn.begin_nested():
                    conn.execute(text(statement))
        conn.rollback()


def test_cli_search_json_and_errors(loaded: Engine, monkeypatch: pytest.MonkeyPatch):
    import json

    from typer.testing import CliRunner

    from archive.app.cli import app

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", loaded.url.render_as_string(False))
    runner = CliRunner()
    result = runner.invoke(app, ["search", "--json", "--limit", "5", "from:muller"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {hit["uidl"] for hit in payload["results"]} == {"s1", "s3"}
    assert payload["results"][0]["sent_at"].startswith("2026-03-0")

    table = runner.invoke(app, ["search", "Καλημέρα"])
    assert table.exit_code == 0, table.output
    assert table.stdout.count("Καλημέρα") == 2  # the title and the subject column

    bad = runner.invoke(app, ["search", '"open'])
    assert bad.exit_code == 2
    assert "unterminated quote" in bad.stderr


def test_search_explain_shows_the_plan(loaded: Engine):
    with loaded.connect() as conn:
        plan = conn.execute(text("SELECT * FROM archive.search_explain('quarterly from:alice')"))
        lines = plan.scalars().all()
    assert any("Execution Time" in line for line in lines)
    assert any("mailarchive.address" in line or "address a" in line for line in lines)


def test_a_million_word_attachment_is_indexed_to_its_last_word(fresh_engine: Engine):
    import hashlib

    from archive.index.ledger import IndexWriter
    from archive.mime import DefectKind, parse_message

    words = "alpha beta gamma delta " * 250_000 + "omegaend"  # 1,000,001 words, 5.75 MB
    raw = (
        b"From: a@example.com\r\nSubject: big log\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: text/plain\r\n\r\nsee the log\r\n--B\r\n"
        b'Content-Type: text/plain; name="log.txt"\r\nContent-Disposition: attachment\r\n\r\n'
        + words.encode()
        + b"\r\n--B--\r\n"
    )
    digest = hashlib.sha256(raw).hexdigest()
    parsed = parse_message(raw)
    assert not [
        d for d in parsed.defects if d.kind in (DefectKind.TEXT_LIMIT, DefectKind.HEADER_LIMIT)
    ]
    with IndexWriter(fresh_engine).mailbox("box", "pop.example.com", "u") as index:
        index.record((b"1", 0), digest, len(raw), parsed)
    (hit,) = search(fresh_engine, "omegaend")
    assert hit.sha256 == digest and "**omegaend**" in (hit.snippet or "")
    assert [h.uidl for h in search(fresh_engine, "filename:log.txt")] == ["1"]
    with fresh_engine.connect() as conn:
        chunks = conn.execute(
            text("SELECT count(*) FROM archive.text_chunks WHERE part_path = '2'")
        ).scalar()
    assert chunks == 58  # 5,750,008 characters in chunks of 100,000
