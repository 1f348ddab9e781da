"""Many mailboxes in one run: bounded concurrency, bounded memory, the per-host cap held.

    uv run python -m benchmarks.many_mailboxes [--small 100] [--large 1000] [--messages 3]
                                               [--parallel 8] [--max-connections 4]

Each size runs in its own child process (so its peak RSS is its own) against the shipped
fake POP3 server, all mailboxes on one host, through the same `Archiver.run` the flow's tasks
call, `--parallel` at once. Reported as same-run ratios, large vs small:

- peak RSS ratio: ~1.0 means memory does not grow with the number of mailboxes;
- per-mailbox time ratio: ~1.0 means the cost per mailbox does not grow either;
- the peak of concurrent POP3 connections, which must not exceed `--max-connections`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archive.config import MailboxConfig, Settings
from archive.index.database import make_engine, start_embedded, stop_embedded
from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore
from migrations import upgrade as migrate
from tests.support.counting import ConnectionCount


def _message(box: int, n: int) -> bytes:
    return (
        f"From: sender{n}@example.org\r\nTo: box{box}@example.com\r\n"
        f"Subject: message {n} of box {box}\r\nMessage-ID: <{box}.{n}@bench>\r\n\r\n"
        f"Body of message {n} in mailbox {box}.\r\n"
    ).encode()


def child(mailboxes: int, messages: int, parallel: int, max_connections: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="mailarchive-many-"))
    settings = Settings(data_dir=work / "data")
    url = start_embedded(settings.data_dir)
    migrate(url)
    engine = make_engine(url, pool_size=parallel)
    count = ConnectionCount()
    archiver = Archiver(
        IndexWriter(engine), LocalStore(work / "objects"), connect=count.connector()
    )
    boxes = {
        f"box{b}": FakeMailbox(f"pw{b}", [_message(b, n) for n in range(messages)])
        for b in range(mailboxes)
    }
    failures = 0
    try:
        with FakePop3Server(boxes) as server:
            configs = []
            for b, name in enumerate(boxes):
                os.environ[f"MANY_PW_{b}"] = f"pw{b}"
                configs.append(
                    MailboxConfig(
                        name=name,
                        host=server.host,
                        port=server.port,
                        tls="none",
                        username=name,
                        password_env=f"MANY_PW_{b}",
                        max_connections=max_connections,
                    )
                )
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()

            def one(box: MailboxConfig) -> int:
                try:
                    return archiver.run(box).archived
                except MailboxFailed:
                    return -1

            with ThreadPoolExecutor(parallel) as pool:
                archived = list(pool.map(one, configs))
            seconds = time.perf_counter() - started
        failures = sum(1 for a in archived if a < 0)
        return {
            "mailboxes": mailboxes,
            "messages": sum(a for a in archived if a > 0),
            "failed_mailboxes": failures,
            "seconds": round(seconds, 2),
            "ms_per_mailbox": round(1000 * seconds / mailboxes, 2),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_growth_mib": round(
                (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1
            ),
            # Ours, from connect to close; the server sees closes a moment late, so its own
            # count can briefly show one more under load.
            "peak_connections": count.peak,
            "peak_connections_seen_by_server": server.peak_connections,
        }
    finally:
        engine.dispose()
        stop_embedded(settings.data_dir)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--max-connections", type=int, default=4)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        result = child(args.child, args.messages, args.parallel, args.max_connections)
        print(json.dumps(result))
        return
    runs = {}
    for size in (args.small, args.large):
        command = [sys.executable, "-m", "benchmarks.many_mailboxes", "--child", str(size)]
        command += ["--messages", str(args.messages), "--parallel", str(args.parallel)]
        command += ["--max-connections", str(args.max_connections)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs[size] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(runs[size]), file=sys.stderr)
    small, large = runs[args.small], runs[args.large]
    report = {
        "small": small,
        "large": large,
        "ratios": {
            "peak_rss_large_vs_small": round(large["peak_rss_mib"] / small["peak_rss_mib"], 2),
            "ms_per_mailbox_large_vs_small": round(
                large["ms_per_mailbox"] / small["ms_per_mailbox"], 2
            ),
        },
        "cap_held": max(small["peak_connections"], large["peak_connections"])
        <= args.max_connections,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
