"""Latency of archive.search() on a large generated archive, with the plans that explain it.

    uv run python -m benchmarks.search [--messages 200000] [--queries 60] [--database-url URL]

Messages are generated inside PostgreSQL (INSERT … SELECT, no parsing, no object store):
words drawn from a 30,000-word vocabulary with a Zipf-like skew, 40-160 words a body,
From/To among 2,000 people, 8 mailboxes, one message in five with a PDF attachment, dates
over five years, and reply chains of four messages. Then, for each query class, `--queries`
different queries are run once each (after a warm-up of the same class) through
`archive.search(q, 20)` (the first page, newest first; one class in relevance order) and
`archive.search_count(q)`, timed from the client, and reported as p50/p95. One
`archive.search_explain` per class shows the plan: which indexes the query used. Against a
schema before migration 0006 (no paging, no count) the same classes run through the old
`archive.search(q, 20)`, which ranked by relevance.

Without --database-url an embedded PostgreSQL is started in a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from archive.index.database import make_engine, start_embedded, stop_embedded
from migrations import upgrade as migrate

VOCABULARY = 30_000
PEOPLE = 2_000
_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["ch", "qu", "sch", "ë", "é"]


def vocabulary(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    ordered = sorted(words)  # a set's order changes with each process's string hashing
    rng.shuffle(ordered)
    return ordered


# Indexes rebuilt after the bulk load (much faster than maintaining them row by row).
REBUILT = ("ix_message_search", "ix_message_cjk_trgm", "ix_message_sent_at")

CHILDREN = """
INSERT INTO mailarchive.address (message_id, ordinal, role, name, address)
SELECT m.id, r.ordinal, r.role, 'Person ' || r.p,
       'person' || r.p || '@example' || (r.p % 50) || '.com'
FROM mailarchive.message m
CROSS JOIN LATERAL (VALUES (0, 'from', m.id % {people}), (1, 'to', (m.id * 31) % {people}))
    AS r(ordinal, role, p);

INSERT INTO mailarchive.attachment
    (message_id, ordinal, part_path, filename, content_type, size, sha256)
SELECT m.id, 0, '2', split_part(m.subject, ' ', 1) || '-' || (m.id % 97) || '.pdf',
       'application/pdf', 10000 + m.id % 900000,
       encode(sha256(convert_to('a' || m.id % 5000, 'UTF8')), 'hex')
FROM mailarchive.message m WHERE m.has_attachments;

INSERT INTO mailarchive.delivery (mailbox_id, uidl, uidl_octets, message_id)
SELECT b.id, 'u' || m.id, convert_to('u' || m.id, 'UTF8'), m.id
FROM mailarchive.message m JOIN mailarchive.mailbox b ON b.name = 'box' || (m.id % 8)
"""


def _rows(total: int, words: list[str]):  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    n = len(words)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    for i in range(1, total + 1):
        # power(random, 3): a Zipf-like skew, a few very common words and a long tail.
        pick = [words[int(n * rng.random() ** 3)] for _ in range(43 + i % 121)]
        yield (
            hashlib.sha256(f"bench{i}".encode()).hexdigest(),
            1500 + (i * 7919) % 400_000,
            f"bench-{i}@example.com",
            " ".join(pick[: 3 + i % 5]),
            start + timedelta(minutes=13 * i),
            i % 5 == 0,
            " ".join(pick[3 + i % 5 :]),
            f"bench-{i - i % 4}@example.com",
            # the file name of CHILDREN's attachment row (ids are 1, 2, … in a new table)
            f"{pick[0]}-{i % 97}.pdf" if i % 5 == 0 else None,
        )


def generate(engine: Engine, total: int, words: list[str]) -> None:
    with engine.begin() as conn:
        existing = conn.execute(text("SELECT count(*) FROM mailarchive.message")).scalar_one()
    if existing:
        print(f"archive already holds {existing} messages", file=sys.stderr)
        return
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'mailarchive' "
            "AND indexname = ANY(%s)",
            (list(REBUILT),),
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX mailarchive.{name}")
        cursor.execute(
            "INSERT INTO mailarchive.mailbox (name, host, username) "
            "SELECT 'box' || i, 'pop.example.com', 'u' || i FROM generate_series(0, 7) i"
        )
        columns = (
            "sha256, size, message_id, subject, sent_at, has_attachments, body_text, thread_id, "
            "attachment_names"
        )
        with cursor.copy(f"COPY mailarchive.message ({columns}) FROM STDIN") as copy:
            for number, row in enumerate(_rows(total, words), 1):
                copy.write_row(row)
                if number % 20_000 == 0:
                    print(
                        f"  {number:>8} messages  {time.perf_counter() - started:5.0f} s",
                        file=sys.stderr,
                    )
        for statement in CHILDREN.format(people=PEOPLE).split(";"):
            cursor.execute(statement)
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def query_classes(words: list[str], rng: random.Random) -> dict[str, tuple[Callable[[], str], str]]:
    def mid() -> str:  # neither stop-word common nor unique: what people search for
        return words[rng.randint(50, 5000)]

    def common() -> str:
        return words[rng.randint(0, 49)]

    def person() -> str:
        return f"person{rng.randint(0, PEOPLE - 1)}@example"

    def month() -> str:
        year, m = rng.randint(2021, 2025), rng.randint(1, 11)
        return f"after:{year}-{m:02d}-01 before:{year}-{m + 1:02d}-01"

    def address() -> str:
        p = rng.randint(0, PEOPLE - 1)
        return f"person{p}@example{p % 50}.com"

    classes: dict[str, Callable[[], str]] = {
        "two words": lambda: f"{mid()} {mid()}",
        "two common words": lambda: f"{common()} {common()}",
        "common OR common": lambda: f"{common()} OR {common()}",
        '"phrase"': lambda: f'"{mid()} {mid()}"',
        "word OR word -word": lambda: f"{mid()} OR {mid()} -{mid()}",
        "address": address,
        "from:": lambda: f"from:{person()}",
        "from: + word": lambda: f"from:{person()} {mid()}",
        "subject:": lambda: f"subject:{mid()}",
        "has:attachment + word": lambda: f"has:attachment {mid()}",
        "filename:": lambda: f"filename:{mid()}",
        "after: before: + word": lambda: f"{month()} {mid()}",
        "mailbox: larger: + word": lambda: f"mailbox:box{rng.randint(0, 7)} larger:100K {mid()}",
    }
    ordered = {name: (make, "newest") for name, make in classes.items()}
    ordered["two common words, relevance"] = (lambda: f"{common()} {common()}", "relevance")
    return ordered


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(engine: Engine, classes: dict[str, tuple[Callable[[], str], str]], count: int) -> None:
    with engine.connect() as conn:
        paged = conn.execute(
            text("SELECT to_regprocedure('archive.search(text, integer, integer, text)')")
        ).scalar()
    if paged:
        search = text("SELECT count(*) FROM archive.search(:q, 20, 0, :order)")
        explain = text("SELECT * FROM archive.search_explain(:q, 20, 0, :order)")
        counter = text("SELECT archive.search_count(:q)")
    else:  # before migration 0006: relevance order only, no count
        search = text("SELECT count(*) FROM archive.search(:q, 20)")
        explain = text("SELECT * FROM archive.search_explain(:q, 20)")
    print(
        "| query class | example | p50 ms | p95 ms | hits | count p50 ms | count p95 ms "
        "| mean count |\n|---|---|---|---|---|---|---|---|"
    )
    plans: list[str] = []
    with engine.connect() as conn:
        for name, (make, order) in classes.items():
            if order != "newest" and not paged:
                continue
            for _ in range(3):  # warm-up: caches, plans
                conn.execute(search, {"q": make(), "order": order}).scalar_one()
            times, hits, count_times, counts = [], [], [], []
            example = make()
            for _ in range(count):
                query = make()
                started = time.perf_counter()
                hits.append(conn.execute(search, {"q": query, "order": order}).scalar_one())
                times.append((time.perf_counter() - started) * 1000)
                if paged and order == "newest":
                    started = time.perf_counter()
                    counts.append(conn.execute(counter, {"q": query}).scalar_one())
                    count_times.append((time.perf_counter() - started) * 1000)
            counted = (
                f"{statistics.median(count_times):.1f} | {percentile(count_times, 0.95):.1f} | "
                f"{statistics.mean(counts):,.0f}"
                if counts
                else "– | – | –"
            )
            print(
                f"| {name} | `{example}` | {statistics.median(times):.1f} | "
                f"{percentile(times, 0.95):.1f} | {statistics.mean(hits):.1f} | {counted} |",
                flush=True,
            )
            plan = conn.execute(explain, {"q": example, "order": order}).scalars().all()
            plans.append(f"-- {name}: {example}\n" + "\n".join(plan))
            conn.commit()
    print("\n" + "\n\n".join(plans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=60, help="queries per class")
    parser.add_argument("--database-url", help="an archive database (default: a temporary one)")
    args = parser.parse_args()
    words = vocabulary()
    work = None
    if args.database_url:
        url = args.database_url
    else:
        work = Path(tempfile.mkdtemp(prefix="mailarchive-search-bench-"))
        work.chmod(0o755)  # as root, the embedded server runs as its own user
        url = start_embedded(work)
    try:
        migrate(url)
        engine = make_engine(url, pool_size=1)
        started = time.perf_counter()
        generate(engine, args.messages, words)
        print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        with engine.connect() as conn:
            size = conn.execute(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")
            ).scalar_one()
            count = conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one()
        print(f"{count} messages, database {size}\n")
        measure(engine, query_classes(words, random.Random(11)), args.queries)
        engine.dispose()
    finally:
        if work is not None:
            stop_embedded(work)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
