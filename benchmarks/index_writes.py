"""CPU per message of the index's write path, ours and PostgreSQL's, on the seeded corpus.

    uv run python -m benchmarks.index_writes --url postgresql://postgres@127.0.0.1:5432/postgres
        [--mailboxes 8] [--messages 250] [--repeat 3] [--batch 100]

What the mailbox thread runs per message between RETR and DELE, minus POP3, the store and
parsing: `MailboxIndex.find_message`, `archive.pipeline.texts.extract_texts` over
`MailboxIndex.extracted_texts` (a real `Extractor`; the corpus's binary attachments have no
reader, its text attachments keep the parser's text, so no worker starts), `record`, and the
group commit of `archive.pipeline.batch.GroupCommit` (100 messages a batch). The corpus is
parsed once, before any clock runs. Each repeat archives every message into a fresh database
(cloned from a migrated template on the server at `--url`), one mailbox after another on one
thread, and reports:

- ours: `time.thread_time()` around each call (CPU of this thread, so the GIL-bound part),
  in ms per message, split by call;
- PostgreSQL: the backend's CPU (utime + stime from /proc/<pid>/stat, so the server must run
  on this machine) over the same span, in ms per message;
- a second pass over the same mailboxes (every message a duplicate: `find_message` answers
  from the database, `record` writes the delivery only).

The smallest of the repeats is the figure: on a shared machine noise only adds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from archive.extract import Extractor
from archive.index.database import make_engine
from archive.index.ledger import IndexWriter, MailboxIndex
from archive.mime import ParsedMessage, parse_message
from archive.pipeline.batch import GroupCommit
from archive.pipeline.texts import extract_texts
from benchmarks.corpus import generate
from migrations import upgrade as migrate

_TICK = os.sysconf("SC_CLK_TCK")

Corpus = dict[str, list[tuple[str, int, ParsedMessage]]]


def backend_cpu(pid: int) -> float:
    """CPU seconds of one PostgreSQL backend (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def load(mailboxes: int, messages: int) -> Corpus:
    corpus: Corpus = defaultdict(list)
    for name, raw in generate(seed=12, mailboxes=mailboxes, messages=messages):
        corpus[name].append((hashlib.sha256(raw).hexdigest(), len(raw), parse_message(raw)))
    return corpus


class Clock:
    """thread_time per named call, summed."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            self.spent[name] += time.thread_time() - started

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            with self.timed(name):
                return call(*args, **kwargs)

        return timed_call


def one_pass(
    index: MailboxIndex,
    box: list[tuple[str, int, ParsedMessage]],
    extractor: Extractor,
    clock: Clock,
    batch: int,
    occurrence_base: int,
) -> None:
    lookup = clock.wrap("extracted_texts", index.extracted_texts)
    with GroupCommit(index, batch, 3600.0) as group:
        for n, (sha256, size, parsed) in enumerate(box):
            with clock.timed("find_message"):
                known = index.find_message(sha256)
            texts = None
            with group.recording():
                if known is None:
                    with clock.timed("extract_texts"):
                        texts = extract_texts(parsed, extractor, lookup)
                with clock.timed("record"):
                    index.record(
                        (f"uid{n}".encode(), occurrence_base),
                        sha256,
                        size,
                        None if known is not None else parsed,
                        texts=texts,
                    )
            with clock.timed("commit"):
                group.tick()
        with clock.timed("commit"):
            group.commit()


def run_once(url: str, corpus: Corpus, extractor: Extractor, batch: int) -> dict[str, Any]:
    engine = make_engine(url, pool_size=2)
    writer = IndexWriter(engine)
    result: dict[str, Any] = {}
    try:
        for label, occurrence in (("new", 0), ("duplicate", 1)):
            clock = Clock()
            backend = 0.0
            count = 0
            for name, box in corpus.items():
                with writer.mailbox(name, "bench.example", name) as index:
                    pid = index.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                    index.conn.commit()
                    before = backend_cpu(pid)
                    one_pass(index, box, extractor, clock, batch, occurrence)
                    backend += backend_cpu(pid) - before
                count += len(box)
            # extracted_texts runs inside extract_texts: counted once.
            ours = sum(v for k, v in clock.spent.items() if k != "extracted_texts")
            result[label] = {
                "messages": count,
                "ours_ms": round(1000 * ours / count, 3),
                "postgres_ms": round(1000 * backend / count, 3),
                **{f"{k}_ms": round(1000 * v / count, 3) for k, v in sorted(clock.spent.items())},
            }
    finally:
        engine.dispose()
    return result


class Databases:
    """Fresh databases cloned from one migrated template on the server at `admin`."""

    def __init__(self, admin: str) -> None:
        self.admin = make_url(admin).set(drivername="postgresql+psycopg")
        self.engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        self.template = f"bench_iw_{os.getpid()}_template"
        self._execute(f'DROP DATABASE IF EXISTS "{self.template}"')
        self._execute(f'CREATE DATABASE "{self.template}"')
        migrate(self._url(self.template))
        self.created: list[str] = [self.template]

    def _url(self, name: str) -> str:
        return make_url(self.admin).set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(sql))

    def fresh(self, n: int) -> str:
        name = f"bench_iw_{os.getpid()}_{n}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return self._url(name)

    def drop(self) -> None:
        for name in reversed(self.created):
            self._execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a server on this machine (CREATE DATABASE)")
    parser.add_argument("--mailboxes", type=int, default=8)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    corpus = load(args.mailboxes, args.messages)
    databases = Databases(args.url)
    extractor = Extractor(workers=1)
    runs = []
    try:
        for n in range(args.repeat):
            runs.append(run_once(databases.fresh(n), corpus, extractor, args.batch))
            print(json.dumps(runs[-1]), flush=True)
    finally:
        extractor.close()
        databases.drop()
    best = {
        label: min((run[label] for run in runs), key=lambda row: row["ours_ms"])
        for label in runs[0]
    }
    print(json.dumps({"best": best}, indent=1))


if __name__ == "__main__":
    main()
