"""Peak memory of the archiving process: N corpus messages plus one 100 MB message.

    uv run python -m benchmarks.memory [--counts 1000,10000] [--big attachment|text|none]
                                       [--parallel 4] [--parse-max-bytes BYTES] [--trace]

The parent starts a private Dovecot and writes each scenario's Maildir files directly (no
fsync, so 10,000 messages load in seconds); each scenario then runs in its own child process,
so `ru_maxrss` is that process's own. The child starts an embedded PostgreSQL and archives
every mailbox through the real pipeline (`make_archiver`: POP3 over TLS, local store with
read-back, parse, attachment text in worker processes, index), `--parallel` mailboxes at
once as the flow runs them, and reports:

- `peak_rss_mib`: `ru_maxrss` of the archiving process (the extract workers and PostgreSQL
  are processes of their own and not counted);
- `rss_at`: the resident set sampled when 1k, 2k, 5k, 10k messages were done, and
  `rss_big_done`: just after the 100 MB message committed;
- `baseline_rss_mib`: the resident set after imports, the database and the archiver were set
  up, before the first mailbox: what the archiving itself adds is `peak - baseline`.

The big message (`--big`) is a realistic one, delivered in the middle of the first mailbox:
`attachment` is a multipart/mixed with a short text part and a ~75 MB base64 attachment
(~100 MB on the wire); `text` is one 100 MB quoted-printable text/plain part. The default
parse limit (`MAILARCHIVE_PARSE_MAX_BYTES`, 64 MiB) indexes a 100 MB message by header only;
`--parse-max-bytes 134217728` parses it in full, the worst case a deployer can choose.
`--trace` prints tracemalloc's top allocation sites at the peak (slow; for finding causes).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from benchmarks.corpus import generate

BIG_BYTES = 100_000_000
MESSAGES_PER_MAILBOX = 250
MARKS = (1_000, 2_000, 5_000, 10_000)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def write_big_message(out: IO[bytes], kind: str, size: int = BIG_BYTES) -> None:
    """A ~`size`-byte message, written a block at a time (this process stays small): a base64
    attachment in a multipart/mixed, or one quoted-printable text part."""
    head = (
        "From: Big Sender <big@example.org>\r\nTo: user000 <user000@example.net>\r\n"
        "Subject: the quarterly scans\r\nDate: Mon, 05 Jan 2026 09:00:00 +0000\r\n"
        "Message-ID: <big.1@example.org>\r\nMIME-Version: 1.0\r\n"
    )
    rng = random.Random(100)
    block = 57 * 1024  # base64 lines of 76 characters from 57 bytes each
    if kind == "attachment":
        head += 'Content-Type: multipart/mixed; boundary="big"\r\n'
        out.write(head.encode() + b"\r\n")
        out.write(
            b"--big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Please find the scans attached.\r\n"
            b'--big\r\nContent-Type: application/octet-stream; name="scans.bin"\r\n'
            b'Content-Disposition: attachment; filename="scans.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n"
        )
        for _ in range(size * 3 // 4 * 76 // 78 // block):
            out.write(base64.encodebytes(rng.randbytes(block)).replace(b"\n", b"\r\n"))
        out.write(b"--big--\r\n")
        return
    head += (
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    )
    out.write(head.encode() + b"\r\n")
    words = "ledger invoice quarterly scan budget review archive retention Gr=C3=BC=C3=9Fe".split()
    total = 0
    while total < size:
        lines = []
        for _ in range(1000):
            line = (" ".join(rng.choices(words, k=9)) + f" {total}\r\n").encode()
            lines.append(line)
            total += len(line)
        out.write(b"".join(lines))


def load(dovecot: Any, count: int, big: str, seed: int, big_bytes: int) -> dict[str, str]:
    """Write `count` corpus messages (250 per mailbox) and the big one into Maildirs."""
    users: dict[str, str] = {}
    mailboxes = max(1, -(-count // MESSAGES_PER_MAILBOX))
    per_box = min(count, MESSAGES_PER_MAILBOX)
    sequence = 0

    def write(user: str, raw: bytes | None) -> None:
        nonlocal sequence
        sequence += 1
        name = f"{1_700_000_000 + sequence}.Q{sequence:09d}.bench"
        path = dovecot.home_root / user / "Maildir" / "new" / name
        with path.open("wb") as out:
            if raw is None:
                write_big_message(out, big, big_bytes)
            else:
                out.write(raw)
        dovecot._own(path)

    for box in range(mailboxes):
        users[f"user{box:03d}"] = f"pw-{box}"
        dovecot.add_user(f"user{box:03d}", f"pw-{box}")
    written = 0
    for user, raw in generate(seed=seed, mailboxes=mailboxes, messages=per_box):
        if written == count:
            break
        if big != "none" and user == "user000" and written == min(count, per_box) // 2:
            write(user, None)
        write(user, raw)
        written += 1
    if big != "none" and count == 0:
        write("user000", None)
    return users


class Sampler:
    """The resident set every 20 ms, and at the message-count marks."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.at: dict[int, float] = {}
        self.done = 0
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib())

    def progress(self, name: str, done: int) -> None:
        with self._lock:
            self.done += done - self._seen.get(name, 0)
            self._seen[name] = done
            for mark in MARKS:
                if self.done >= mark and mark not in self.at:
                    self.at[mark] = round(_rss_mib(), 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def child(spec: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from archive.config import MailboxConfig, Settings
    from archive.index.database import make_engine, start_embedded, stop_embedded
    from archive.pipeline.archiver import MailboxFailed, MailboxResult
    from archive.pipeline.build import make_archiver
    from migrations import upgrade as migrate

    work = Path(spec["work"])
    settings = Settings(
        data_dir=work / "data",
        store_url=f"file://{work / 'objects'}",
        parse_max_bytes=spec["parse_max_bytes"],
    )
    url = start_embedded(settings.data_dir)
    tracing = spec["trace"]
    try:
        migrate(url)
        engine = make_engine(url, pool_size=spec["parallel"])
        archiver = make_archiver(settings, engine)
        boxes = []
        for name, password in spec["users"].items():
            os.environ[f"MEM_PW_{name.upper()}"] = password
            boxes.append(
                MailboxConfig(
                    name=name,
                    host=spec["host"],
                    port=spec["port"],
                    ca_file=Path(spec["ca"]),
                    username=name,
                    password_env=f"MEM_PW_{name.upper()}",
                )
            )
        baseline = _rss_mib()
        sampler = Sampler()
        if tracing:
            import tracemalloc

            tracemalloc.start(12)
        big_done: list[float] = []

        def one(box: MailboxConfig) -> int:
            def progress(counts: MailboxResult) -> None:
                sampler.progress(box.name, counts.archived + counts.duplicates)
                if box.name == "user000" and counts.bytes > 50_000_000 and not big_done:
                    big_done.append(round(_rss_mib(), 1))

            try:
                result = archiver.run(box, progress=progress)
            except MailboxFailed as exc:
                print(f"{box.name} failed: {exc.result.error}", file=sys.stderr)
                return -1
            return result.archived + result.duplicates

        started = time.perf_counter()
        with ThreadPoolExecutor(spec["parallel"]) as pool:
            archived = list(pool.map(one, boxes))
        seconds = time.perf_counter() - started
        sampler.stop()
        top: list[str] = []
        if tracing:
            import tracemalloc

            _, traced_peak = tracemalloc.get_traced_memory()
            top = [f"traced peak {traced_peak / (1 << 20):.1f} MiB"]
            tracemalloc.stop()
        if archiver.extractor is not None:
            archiver.extractor.close()
        engine.dispose()
        return {
            "messages": sum(a for a in archived if a > 0),
            "failed_mailboxes": sum(1 for a in archived if a < 0),
            "seconds": round(seconds, 1),
            "baseline_rss_mib": round(baseline, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "sampled_peak_mib": round(sampler.peak, 1),
            "rss_at": {str(k): v for k, v in sorted(sampler.at.items())},
            "rss_big_done": big_done[0] if big_done else None,
            "trace": top,
        }
    finally:
        stop_embedded(settings.data_dir)


def scenario(dovecot: Any, count: int, big: str, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mailarchive-mem-"))
    users = load(dovecot, count, big, seed=args.seed + count, big_bytes=args.big_bytes)
    spec = {
        "work": str(work),
        "users": users,
        "host": dovecot.host,
        "port": dovecot.pop3s_port,
        "ca": str(dovecot.tls.ca_file),
        "parallel": args.parallel,
        "parse_max_bytes": args.parse_max_bytes,
        "trace": args.trace,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"child failed:\n{done.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for user in users:
            shutil.rmtree(dovecot.home_root / user, ignore_errors=True)
            (dovecot.passwd_dir / user).unlink(missing_ok=True)
    return {"count": count, "big": big, **result}


def main() -> None:
    from archive.defaults import PARSE_MAX_BYTES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,10000")
    parser.add_argument("--big", default="attachment", choices=("attachment", "text", "none"))
    parser.add_argument("--only-big", action="store_true", help="also run with the big one only")
    parser.add_argument("--big-bytes", type=int, default=BIG_BYTES)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--parse-max-bytes", type=int, default=PARSE_MAX_BYTES)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child))))
        return
    if shutil.which("dovecot") is None:
        sys.exit("dovecot not found: apt-get install dovecot-pop3d")
    from tests.support.dovecot import running_dovecot

    counts = [int(c) for c in args.counts.split(",") if c]
    if args.only_big:
        counts = [0, *counts]
    root = Path(tempfile.mkdtemp(prefix="mailarchive-mem-dovecot-"))
    rows = []
    with running_dovecot(root) as dovecot:
        for count in counts:
            row = scenario(dovecot, count, args.big, args)
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"parse_max_bytes": args.parse_max_bytes, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
