"""Every ```sql block of docs/sql.md runs on a loaded archive; the key ones return known rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"
_BLOCK = re.compile(r"^### (?P<title>.+?)$|^```sql\n(?P<sql>.*?)^```", re.M | re.S)


def _examples() -> list[tuple[str, str]]:
    examples, title = [], "(no title)"
    for match in _BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        if match.group("title"):
            title = match.group("title")
        else:
            examples.append((title, match.group("sql")))
    return examples


EXAMPLES = _examples()

# Expected rows of the examples that answer a question about the test archive: a row
# count, or (the columns compared, the rows; None: compared sorted).
Expectation = int | tuple[tuple[int, ...], list[tuple[object, ...]], bool]
EXPECTED: dict[str, Expectation] = {
    "Search like a web search engine": 2,
    "Every match, a page at a time, and how many there are": (
        (0, 2, 3),
        [(3, "sales", "Quarterly report budget")],  # the third and oldest of three
        True,
    ),
    "Best matches first": 3,
    "Addresses, URLs, paths and file names": (
        (0,),
        [("s1",), ("s2",), ("s3",)],
        True,
    ),
    "Words in Chinese, Japanese or Korean": 1,
    "Full text without the search language": 1,
    "Text in attachments and in very long bodies": 3,
    "Combine words with fields": (
        (0, 2),
        [("sales", "AW: Re: Quarterly report budget"), ("sales", "Quarterly report budget")],
        False,
    ),
    "Who mailed legal@example.com in March 2026?": (
        (0, 1, 2),
        [
            ("bob@example.org", "Bob Builder", 2),
            ("juergen@example.de", "Jürgen Müller", 2),
            ("elodie@example.fr", "Élodie", 1),
        ],
        True,
    ),
    "Messages carrying a given file, across mailboxes": (
        (0, 2, 3),
        [
            ("sales", "Invoice March", "invoice-2026-03.csv"),
            ("support", "Invoice March", "invoice-2026-03.csv"),
            ("support", "Fwd: Invoice copy", "invoice-2026-03.csv"),
        ],
        True,
    ),
    "All messages of a thread": (
        (1, 2),
        [
            ("sales", "Quarterly report budget"),
            ("sales", "Re: Quarterly report budget"),
            ("sales", "AW: Re: Quarterly report budget"),
        ],
        True,
    ),
    "Everyone a person has written to": (
        (0,),
        [("carol@example.net",), ("juergen@example.de",)],
        True,
    ),
}


def test_the_cookbook_has_about_fifteen_questions():
    assert len(EXAMPLES) >= 15
    assert set(EXPECTED) <= {title for title, _ in EXAMPLES}


@pytest.mark.parametrize(("title", "sql"), EXAMPLES, ids=[title for title, _ in EXAMPLES])
def test_cookbook_example_runs(loaded_archive: Engine, title: str, sql: str):
    raw = loaded_archive.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql)  # exactly as pasted into psql: no parameters
        rows = cursor.fetchall() if cursor.description else []
    finally:
        raw.rollback()
        raw.close()
    expected = EXPECTED.get(title)
    if isinstance(expected, int):
        assert len(rows) == expected
    elif expected is not None:
        columns, wanted, ordered = expected
        got = [tuple(row[i] for i in columns) for row in rows]
        assert (got if ordered else sorted(got)) == (wanted if ordered else sorted(wanted))


# The same queries, and the README's and the demo's, on what `mailarchive demo` archives:
# each must answer with at least one row on the data a new user has.

README = DOC.parents[1] / "README.md"
_SQL_BLOCK = re.compile(r"^```sql\n(?P<sql>.*?)^```", re.M | re.S)


def _statements(text: str) -> list[str]:
    """Each statement of each ```sql block (the README's blocks hold several)."""
    found = []
    for match in _SQL_BLOCK.finditer(text):
        parts = [p.strip() for p in match.group("sql").split(";\n")]
        found.extend(p for p in parts if p and not all(
            line.startswith("--") for line in p.splitlines()
        ))  # fmt: skip
    return found


def _demo_queries() -> list[tuple[str, str]]:
    from archive.app.demo import EXAMPLE_QUERIES

    queries = [(title, sql) for title, sql in EXAMPLES if not sql.lstrip().startswith("DO ")]
    readme = _statements(README.read_text(encoding="utf-8"))
    queries += [(f"README {i + 1}", sql) for i, sql in enumerate(readme)]
    return queries + [(f"demo: {title}", sql) for title, sql in EXAMPLE_QUERIES]


DEMO_QUERIES = _demo_queries()


@pytest.fixture(scope="module")
def demo_archive(databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The demo's three mailboxes of 100 messages, archived by the pipeline the demo uses
    (attachment text extracted), in a database of their own."""
    import os

    from archive.app.demo import place_example_hold
    from archive.app.demo_data import generate_mailboxes
    from archive.config import MailboxConfig, load_settings
    from archive.index.database import make_engine
    from archive.pipeline.build import make_archiver
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server

    url = databases.create()
    store = tmp_path_factory.mktemp("demo-objects")
    settings = load_settings().model_copy(update={"database_url": url, "store_url": store.as_uri()})
    engine = make_engine(url, pool_size=2)
    archiver = make_archiver(settings, engine)
    mailboxes = generate_mailboxes()
    os.environ["DEMO_COOKBOOK_PW"] = "pw"
    try:
        with FakePop3Server(
            {name: FakeMailbox("pw", list(mails)) for name, mails in mailboxes.items()}
        ) as server:
            for name in mailboxes:
                box = MailboxConfig(
                    name=name, host=server.host, port=server.port, tls="none",
                    username=name, password_env="DEMO_COOKBOOK_PW",
                )  # fmt: skip
                result = archiver.run(box)
                assert result.status == "ok", result
        place_example_hold(engine)  # what `mailarchive demo` does after its run
        yield engine
    finally:
        os.environ.pop("DEMO_COOKBOOK_PW", None)
        if archiver.extractor is not None:
            archiver.extractor.close()
        engine.dispose()
        databases.drop(url)


@pytest.mark.parametrize(("title", "sql"), DEMO_QUERIES, ids=[t for t, _ in DEMO_QUERIES])
def test_every_query_answers_on_demo_data(demo_archive: Engine, title: str, sql: str):
    raw = demo_archive.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
    finally:
        raw.rollback()
        raw.close()
    assert rows, f"{title!r} returns no rows on demo data"
