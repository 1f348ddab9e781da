"""Import and export speed: `uv run python -m benchmarks.transfer --database-url URL`.

The demo generator's mail (plain, HTML, attachments, non-ASCII) as an mbox file is imported into
a new database (created on the server at URL, dropped at the end) and a local store, then
exported whole as mbox and as a BagIt bag of .eml files. Prints messages/s for each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from archive.app.demo_data import generate_mailboxes
from archive.index.database import make_engine
from archive.index.ledger import IndexWriter
from archive.pipeline.export import ExportRequest, export
from archive.pipeline.importer import Importer
from archive.store import LocalStore
from archive.transfer import mbox_entry
from migrations import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", required=True, help="a server where we may CREATE DATABASE"
    )
    parser.add_argument("--messages", type=int, default=500, help="per mailbox (4 mailboxes)")
    args = parser.parse_args()
    admin = create_engine(
        make_url(args.database_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    name = f"ma_bench_transfer_{int(time.time())}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        engine = make_engine(url, pool_size=2)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            mails = [m for box in generate_mailboxes(4, args.messages).values() for m in box]
            now = datetime.now(UTC)
            (root / "in.mbox").write_bytes(b"".join(mbox_entry(m, None, now) for m in mails))
            store = LocalStore(root / "objects")
            result = Importer(IndexWriter(engine), store).run("mbox", root / "in.mbox", "bench")
            print(f"import mbox: {result.found} messages, {result.rate:,.0f} messages/s")
            for fmt, bag in (("mbox", False), ("eml-zip", True)):
                done = export(
                    engine, store, ExportRequest("", str(root / f"out-{fmt}"), fmt, bagit=bag)
                )
                label = f"export {fmt}{' + BagIt' if bag else ''}"
                print(f"{label}: {done.exported} messages, {done.rate:,.0f} messages/s")
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
