"""Throughput of the archive pipeline against a real Dovecot, as same-run ratios.

    uv run python -m benchmarks.throughput [--mailboxes 8] [--messages 250] [--profile]

Three measurements on the same mailboxes, in the same run, so the ratios hold on any machine:

- baseline: Python's poplib, RETR one message at a time, one mailbox after another (what a
  getmail-style loop does), fetching only;
- fetch: our POP3 client, pipelined RETR, streamed and hashed, one mailbox after another;
- archive: the whole pipeline (fetch, store raw with read-back, parse, store attachments,
  index in PostgreSQL) with `--parallel` mailboxes at once, as the flow runs it.

Reported as messages per second, as ratios to the baseline and to the raw limit (`fetch`:
what the archive run would reach if archiving cost nothing), and the peak RSS of this process.
`--profile` adds a cProfile of the archive run, sorted by cumulative time, to find the hot spot.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import poplib
import pstats
import resource
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from archive.app.demo_data import generate_mailboxes
from archive.config import MailboxConfig, Settings
from archive.index.database import make_engine, start_embedded, stop_embedded
from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver
from archive.pop3.client import Endpoint, Pop3Client
from archive.store import LocalStore, durability
from migrations import upgrade as migrate


def baseline_poplib(host: str, port: int, ca: Path, users: dict[str, str]) -> int:
    count = 0
    context = ssl.create_default_context(cafile=str(ca))
    for user, password in users.items():
        client = poplib.POP3_SSL(host, port, context=context, timeout=30)
        client._MAXLINE = 1 << 20  # poplib's 2,048-byte default fails on real mail
        client.user(user)
        client.pass_(password)
        n, _ = client.stat()
        for number in range(1, n + 1):
            b"\r\n".join(client.retr(number)[1])
            count += 1
        client.quit()
    return count


def fetch_ours(host: str, port: int, ca: Path, users: dict[str, str]) -> int:
    count = 0
    for user, password in users.items():
        client = Pop3Client.connect(Endpoint(host, port, "implicit", ca, 30, user))
        client.login(user, password)
        for message in client.retrieve([n for n, _ in client.uidl()]):
            message.close()
            count += 1
        client.quit()
    return count


def archive_all(archiver: Archiver, boxes: list[MailboxConfig], parallel: int) -> int:
    if parallel == 1:  # in this thread, so that --profile sees the work
        return sum(r.archived + r.duplicates for r in map(archiver.run, boxes))
    with ThreadPoolExecutor(parallel) as pool:
        return sum(r.archived + r.duplicates for r in pool.map(archiver.run, boxes))


class _SyncCounter:
    """Counts and times calls of one sync function (os.fsync, or the store's syncfs)."""

    def __init__(self, real: Callable[[Any], None]) -> None:
        self.real = real
        self.calls = 0
        self.seconds = 0.0

    def __call__(self, target: Any) -> None:
        self.calls += 1
        started = time.perf_counter()
        try:
            self.real(target)
        finally:
            self.seconds += time.perf_counter() - started


class _StoreSyncs:
    """This process's fsync and syncfs calls (the object store's) from `start()` to `stop()`:
    a batch barrier is one syncfs where the store uses it, else an fsync per file and
    directory."""

    def __init__(self) -> None:
        self.fsync = _SyncCounter(os.fsync)
        self.syncfs = _SyncCounter(durability.syncfs)

    def start(self) -> None:
        os.fsync = self.fsync
        durability.syncfs = self.syncfs

    def stop(self) -> None:
        os.fsync = self.fsync.real
        durability.syncfs = self.syncfs.real

    @property
    def calls(self) -> int:
        return self.fsync.calls + self.syncfs.calls

    @property
    def seconds(self) -> float:
        return self.fsync.seconds + self.syncfs.seconds


def _postgres_cpu(data_dir: Path) -> float:
    """CPU seconds (user + system) of the running processes of the embedded PostgreSQL."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        try:
            if str(data_dir) not in (proc / "cmdline").read_text() and not _is_backend(proc):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # utime, stime, and those of its ended children (backends that closed).
        total += sum(int(value) for value in fields[11:15]) / tick
    return total


def _is_backend(proc: Path) -> bool:
    """A postgres child (its command line is rewritten to "postgres: ...")."""
    return (proc / "cmdline").read_bytes().startswith(b"postgres: ") and _parent_is_ours(proc)


def _parent_is_ours(proc: Path) -> bool:
    ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
    return b"mailarchive-bench" in Path(f"/proc/{ppid}/cmdline").read_bytes()


def _commits(engine) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        found = conn.execute(
            text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        ).scalar_one()
    return int(found)


def timed(label: str, fn, *args) -> dict[str, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    count = fn(*args)
    seconds = time.perf_counter() - started
    print(
        f"{label:>9}: {count} messages in {seconds:.2f} s = {count / seconds:,.0f} msg/s",
        file=sys.stderr,
    )
    return {"messages": count, "seconds": round(seconds, 3), "msg_per_s": round(count / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=8)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--no-syncfs",
        action="store_true",
        help="make each batch durable by an fsync per file and directory, not one syncfs",
    )
    args = parser.parse_args()
    if shutil.which("dovecot") is None:
        sys.exit("dovecot not found: apt-get install dovecot-pop3d")

    from tests.support.dovecot import running_dovecot

    work = Path(tempfile.mkdtemp(prefix="mailarchive-bench-"))
    mail = generate_mailboxes(args.mailboxes, args.messages)
    total_bytes = sum(len(m) for box in mail.values() for m in box)
    print(
        f"{args.mailboxes} mailboxes x {args.messages} messages, {total_bytes / 1e6:.1f} MB",
        file=sys.stderr,
    )
    with running_dovecot(work) as dovecot:
        users = {}
        for name, messages in mail.items():
            dovecot.add_user(name, f"pw-{name}", messages)
            users[name] = f"pw-{name}"
        host, port, ca = dovecot.host, dovecot.pop3s_port, dovecot.tls.ca_file
        results = {
            "baseline": timed("poplib", baseline_poplib, host, port, ca, users),
            "fetch": timed("fetch", fetch_ours, host, port, ca, users),
        }
        settings = Settings(data_dir=work / "data")
        url = start_embedded(settings.data_dir)
        migrate(url)
        engine = make_engine(url, pool_size=args.parallel)
        archiver = Archiver(
            IndexWriter(engine),
            LocalStore(work / "objects", use_syncfs=False if args.no_syncfs else None),
        )
        boxes = []
        for name, password in users.items():
            os.environ[f"BENCH_PW_{name.upper()}"] = password
            boxes.append(
                MailboxConfig(
                    name=name,
                    host=host,
                    port=port,
                    ca_file=ca,
                    username=name,
                    password_env=f"BENCH_PW_{name.upper()}",
                )
            )
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        commits_before = _commits(engine)
        cpu_before, pg_before = time.process_time(), _postgres_cpu(settings.data_dir)
        fsyncs = _StoreSyncs()
        fsyncs.start()
        results["archive"] = timed("archive", archive_all, archiver, boxes, args.parallel)
        fsyncs.stop()
        count = max(1, results["archive"]["messages"])
        # CPU seconds per 1,000 messages: this process (fetch, parse, store, SQL client side)
        # and the PostgreSQL server's processes (statements, vectors, GIN, WAL).
        results["archive"]["cpu_s_per_1000"] = round(
            (time.process_time() - cpu_before) / count * 1000, 2
        )
        results["archive"]["fsyncs_per_message"] = round(fsyncs.calls / count, 2)
        results["archive"]["syncfs_calls"] = fsyncs.syncfs.calls
        results["archive"]["fsync_ms_per_message"] = round(fsyncs.seconds / count * 1000, 2)
        results["archive"]["postgres_cpu_s_per_1000"] = round(
            (_postgres_cpu(settings.data_dir) - pg_before) / count * 1000, 2
        )
        # Transactions committed (each one a WAL flush when it wrote), per archived message.
        engine.dispose()  # a backend reports its counts when it ends
        time.sleep(1.0)
        results["archive"]["commits_per_message"] = round(
            (_commits(engine) - commits_before) / max(1, results["archive"]["messages"]), 3
        )
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(
                "archive/|psycopg/cursor.py", 30
            )
        engine.dispose()
    base = results["baseline"]["msg_per_s"]
    results["ratios"] = {
        "fetch_vs_poplib": round(results["fetch"]["msg_per_s"] / base, 2),
        "archive_vs_poplib_fetch_only": round(results["archive"]["msg_per_s"] / base, 2),
        # The raw limit: our pipelined client reading the bytes only, in this same run.
        "archive_vs_raw_limit": round(
            results["archive"]["msg_per_s"] / results["fetch"]["msg_per_s"], 3
        ),
    }
    # Linux reports kilobytes; this process only (Dovecot and PostgreSQL run in their own).
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(
        f"archive / raw limit: {results['ratios']['archive_vs_raw_limit']:.3f}, "
        f"{results['archive']['commits_per_message']} commits per message, "
        f"{results['archive']['fsyncs_per_message']} store fsyncs/syncfs "
        f"({results['archive']['fsync_ms_per_message']} ms) per message, "
        f"CPU s per 1,000: {results['archive']['cpu_s_per_1000']} here, "
        f"{results['archive']['postgres_cpu_s_per_1000']} PostgreSQL, "
        f"peak RSS {results['peak_rss_mib']} MiB",
        file=sys.stderr,
    )
    print(json.dumps(results, indent=2))
    stop_embedded(settings.data_dir)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
