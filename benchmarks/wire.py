"""Archive at the speed of the wire: mailarchive beside the raw limit, getmail6 and notmuch.

    uv run python -m benchmarks.wire [--mailboxes 40] [--messages 250] [--parallel 4]
        [--rtt-ms 20] [--peers/--no-peers] [--seed 12] [--write-docs]

One command, one run, the same mailboxes for every row (issue 12's harness):

1. `benchmarks.corpus.generate(seed, mailboxes, messages)` is written, one message at a time,
   straight into the Maildirs of a private Dovecot (`tests.support.dovecot`), then synced.
2. `notmuch new` indexes those Maildirs (before any POP3 session touches them), with a
   throwaway database; notmuch is single-threaded.
3. raw: a minimal client that only reads the bytes (our `Pop3Client`, pipelined RETR,
   streamed and hashed, then dropped), `--parallel` mailboxes at once, one connection each.
4. mailarchive: `Archiver.run` over every mailbox, `--parallel` at once in threads (as the
   flow's task runner does), built by `archive.pipeline.build.make_archiver` as the flow
   builds it (attachment text extraction included), into a fresh database of an embedded
   PostgreSQL and a fresh local store. Also measured: the time from the last RETR to that
   message being found by `archive.index.search.search` (polled every 10 ms).
5. raw and mailarchive again through a TCP delay proxy adding `--rtt-ms / 2` each way.
6. getmail6 (the Debian package, as an unprivileged user; one rc file per mailbox, all in
   one `getmail` invocation, which runs them in sequence), to a Maildir, over loopback and
   through the same proxy.

Every row runs in its own process so that its CPU time and peak RSS are its own: Python
rows report the CPU of their work section (all threads, and children they waited for, such
as the extraction workers), command rows (`getmail`, `notmuch`) the rusage of the whole
command (start-up included). mailarchive's row adds the embedded PostgreSQL's CPU (the
postmaster, its ended backends and the live ones). The delay proxy runs in this process,
so its CPU is in no row. Every row must see every message: counts (and for raw, bytes) are
checked per mailbox and the run fails loudly otherwise; no POP3 row deletes, and Dovecot's
Maildirs are counted again after each one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.corpus import describe, generate

GETMAIL_USER = "benchgm"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- wire:begin -->", "<!-- wire:end -->"
MiB = 1 << 20


# --- the delay proxy ----------------------------------------------------------------------


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that delivers every chunk `delay` seconds after reading it.

    Each direction is a reader that stamps chunks with their due time and a writer that
    sends them in order once due, so the delay is added once per direction while the
    throughput stays that of the connection (chunks in flight overlap, as on a long link);
    `round trip = 2 * delay`. A bounded queue per direction keeps TCP's back-pressure.
    Runs an asyncio loop in a thread of its own; `with DelayProxy(...) as proxy: proxy.port`.
    """

    host = "127.0.0.1"

    def __init__(self, target_host: str, target_port: int, delay: float) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> DelayProxy:
        self._thread = threading.Thread(target=self._serve, name="delay-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError(f"delay proxy did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to __enter__ if it happens before ready
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        for writer in (client_w, server_w):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            for writer in (client_w, server_w):
                with contextlib.suppress(OSError):
                    writer.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                while (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                try:
                    data = await source.read(1 << 16)
                except OSError:  # reset by the peer: end this direction
                    data = b""
                await queue.put((loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        except OSError:  # the other side went away: nothing left to deliver to
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender


# --- the corpus in Maildirs ---------------------------------------------------------------


@dataclass
class Mailbox:
    name: str
    password: str
    messages: int = 0
    bytes: int = 0
    # What a POP3 client receives: bare LF sent as CRLF, and a CRLF added when the last
    # line has none (see `tests.support.dovecot.Dovecot.served_bytes`).
    served_bytes: int = 0
    subjects: list[str] = field(default_factory=list, repr=False)


_SUBJECT = re.compile(rb"^Subject: ([^\r\n]*)", re.MULTILINE)


def write_maildir(maildir: Path, messages: Iterable[bytes], *, owner: Any = None) -> int:
    """Write `messages` into `maildir/new/` in order (tmp/ then rename, no fsync: the caller
    syncs once at the end); return the bytes written. `owner(path)` chowns each file.

    Names sort in delivery order (Dovecot orders new mail by the file name's leading
    timestamp, then the rest), like `Dovecot.deliver`'s.
    """
    stamp, pid, total = int(time.time()), os.getpid(), 0
    for sequence, raw in enumerate(messages):
        name = f"{stamp}.Q{sequence:09d}P{pid}.mailarchive-bench"
        staging = maildir / "tmp" / name
        with open(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
            file.write(raw)
        if owner is not None:
            owner(staging)
        os.rename(staging, maildir / "new" / name)
        total += len(raw)
    return total


def maildir_messages(maildir: Path) -> list[bytes]:
    """The messages of a Maildir (new/ and cur/), in file-name order."""
    files = [p for sub in ("new", "cur") for p in (maildir / sub).iterdir() if p.is_file()]
    return [p.read_bytes() for p in sorted(files, key=lambda p: p.name)]


def served_size(raw: bytes) -> int:
    """The octets Dovecot sends for `raw` (after the client undoes dot-stuffing)."""
    bare_lf = raw.count(b"\n") - raw.count(b"\r\n")
    return len(raw) + bare_lf + (0 if raw.endswith(b"\n") else 2)


def _noted(box: Mailbox, group: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """The messages of one mailbox, counted and their subjects kept on the way."""
    for _, raw in group:
        found = _SUBJECT.search(raw, 0, 16384)
        box.subjects.append(found.group(1).decode() if found else "")
        box.messages += 1
        box.bytes += len(raw)
        box.served_bytes += served_size(raw)
        yield raw


def load_corpus(dovecot: Any, seed: int, mailboxes: int, messages: int) -> list[Mailbox]:
    """Generate the corpus into Dovecot's Maildirs, one message in memory at a time."""
    boxes: dict[str, Mailbox] = {}
    stats: dict[str, int] = {}
    stream = generate(seed, mailboxes, messages, stats=stats)
    for name, group in itertools.groupby(stream, key=lambda pair: pair[0]):
        box = boxes[name] = Mailbox(name, f"pw-{name}")
        dovecot.add_user(name, box.password)

        write_maildir(dovecot.maildir(name), _noted(box, group), owner=dovecot.own)
    shape = describe(stats)
    if shape.messages != mailboxes * messages or len(boxes) != mailboxes:
        raise AssertionError(f"corpus: {shape.messages} messages in {len(boxes)} mailboxes")
    os.sync()  # no writeback of the corpus during the first measured row
    return list(boxes.values())


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    messages: int
    bytes: int
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    postgres_cpu_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def msg_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds

    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / self.messages * 1000

    def postgres_per_1000(self) -> float | None:
        if self.postgres_cpu_seconds is None:
            return None
        return self.postgres_cpu_seconds / self.messages * 1000


def check_counts(row: str, expected: dict[str, int], seen: dict[str, int]) -> None:
    """Every mailbox seen with exactly its messages, or the run fails."""
    wrong = {
        name: (seen.get(name, 0), count)
        for name, count in expected.items()
        if seen.get(name, 0) != count
    }
    extra = sorted(set(seen) - set(expected))
    if wrong or extra:
        detail = ", ".join(f"{n}: {got} of {want}" for n, (got, want) in sorted(wrong.items()))
        raise AssertionError(f"{row}: not every message was seen ({detail}) {extra or ''}")


def _proc_cpu(pid: int, *, with_children: bool = True) -> float:
    """CPU seconds of a live process; with its ended, waited-for children if asked."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = fields[11:15] if with_children else fields[11:13]
    return sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a server: the process, its ended children and its live ones."""
    total = _proc_cpu(pid)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                total += _proc_cpu(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


def cpu_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of the whole machine so far, every core (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def busy_since(before: tuple[int, int]) -> float:
    """The share of the machine's CPU time (all cores) that was busy since `before`:
    1.0 means a CPU-bound row, or another load beside it."""
    busy, total = cpu_ticks()
    return round((busy - before[0]) / max(total - before[1], 1), 3)


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _run_command(
    argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None, check: bool = True
) -> tuple[float, float, float]:
    """Run a command to its end; (wall seconds, CPU seconds, peak RSS MiB) of it and the
    children it waited for (`wait4`)."""
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if check and process.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{argv[0]} exited with {process.returncode}:\n{tail}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_python_row(kind: str, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run `--row kind` in a child process; return what it printed (JSON, last line)."""
    spec_file = work / f"{spec['label']}.json"
    spec_file.write_text(json.dumps(spec))
    log = work / f"{spec['label']}.log"
    with open(log, "wb") as err:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.wire", "--row", kind, "--spec", str(spec_file)],
            stdout=subprocess.PIPE, stderr=err, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"row {spec['label']} failed ({done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# --- the rows, in their own processes -----------------------------------------------------


def _row_raw(spec: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from archive.pop3.client import Endpoint, Pop3Client

    ca = Path(spec["ca_file"])

    def one(box: dict[str, Any]) -> tuple[str, int, int]:
        endpoint = Endpoint(spec["host"], spec["port"], "implicit", ca, 120, box["name"])
        client = Pop3Client.connect(endpoint)
        client.login(box["name"], box["password"])
        count = size = 0
        for message in client.retrieve([listed.number for listed in client.listing()]):
            size += message.size
            count += 1
            message.close()
        client.quit()
        return box["name"], count, size

    started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    ticks = cpu_ticks()
    with ThreadPoolExecutor(spec["parallel"]) as pool:
        done = list(pool.map(one, spec["boxes"]))
    return {
        "machine_busy": busy_since(ticks),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu + _children_cpu() - children,
        "peak_rss_mib": _peak_rss_mib(),
        "seen": {name: count for name, count, _ in done},
        "bytes": {name: size for name, _, size in done},
    }


def _row_archive(spec: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    from archive.config import MailboxConfig, Settings
    from archive.index.search import search
    from archive.pipeline.build import make_archiver, open_database
    from archive.pop3.client import Pop3Client

    run_dir = Path(spec["run_dir"])
    parallel = spec["parallel"]
    settings = Settings(
        data_dir=run_dir, database_url=spec["database_url"], max_parallel_mailboxes=parallel
    )
    _, engine = open_database(settings, pool_size=parallel + 1)
    boxes = []
    subjects = {box["name"]: box["subjects"] for box in spec["boxes"]}
    for box in spec["boxes"]:
        variable = f"WIRE_PW_{box['name'].upper()}"
        os.environ[variable] = box["password"]
        boxes.append(
            MailboxConfig(
                name=box["name"],
                host=spec["host"],
                port=spec["port"],
                ca_file=Path(spec["ca_file"]),
                username=box["name"],
                password_env=variable,
                max_connections=parallel,
            )  # fmt: skip
        )
    total = sum(len(s) for s in subjects.values())
    retrs = _RetrTimes(total)

    def connect(endpoint: Any) -> Any:
        return _TimedSource(Pop3Client.connect(endpoint), retrs)

    archiver = replace(make_archiver(settings, engine), connect=connect)
    found: dict[str, Any] = {}

    def watch() -> None:
        """From the last RETR until that message is found by search."""
        if not retrs.all_retrieved.wait(timeout=spec["watch_timeout"]):
            return
        last_at, user, uidl, number = retrs.last
        query = f'mailbox:{user} subject:"{subjects[user][number - 1]}"'
        deadline = time.monotonic() + spec["watch_timeout"]
        while time.monotonic() < deadline:
            asked = time.monotonic()
            hits = search(engine, query, 5)
            if any(hit.uidl == uidl for hit in hits):
                found.update(
                    last_retr_to_searchable_s=time.monotonic() - last_at,
                    search_query_s=time.monotonic() - asked,
                    query=query,
                )
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pg_pid = postmaster_pid(Path(spec["pgdata"]))
    started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    pg_before = tree_cpu(pg_pid)
    ticks = cpu_ticks()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(archiver.run, boxes))
    if archiver.extractor is not None:
        archiver.extractor.close()  # its workers are waited for: their CPU counts here
    seconds = time.perf_counter() - started
    machine_busy = busy_since(ticks)
    cpu_seconds = time.process_time() - cpu + _children_cpu() - children
    pg_cpu = tree_cpu(pg_pid) - pg_before
    watcher.join(spec["watch_timeout"])
    engine.dispose()
    failed = [r.to_dict() for r in results if r.status != "ok" or r.failed_messages]
    if failed:
        raise AssertionError(f"mailarchive: mailboxes failed: {failed}")
    if not found:
        raise AssertionError("mailarchive: the last message retrieved never became searchable")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "postgres_cpu_seconds": pg_cpu,
        "peak_rss_mib": _peak_rss_mib(),
        "seen": {r.name: r.archived + r.duplicates for r in results},
        "bytes": {r.name: r.bytes for r in results},
        "duplicates": sum(r.duplicates for r in results),
        "machine_busy": machine_busy,
        **found,
    }


class _RetrTimes:
    """When the messages arrived, across every session: the last one and when all had."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.last: tuple[float, str, str, int] = (0.0, "", "", 0)
        self.all_retrieved = threading.Event()
        self._lock = threading.Lock()

    def note(self, user: str, uidl: str, number: int) -> None:
        with self._lock:
            self.count += 1
            self.last = (time.monotonic(), user, uidl, number)
            if self.count >= self.total:
                self.all_retrieved.set()


class _TimedSource:
    """A `MailSource` that notes each retrieved message (user, UIDL, number, time)."""

    def __init__(self, source: Any, times: _RetrTimes) -> None:
        self._source = source
        self._times = times
        self._user = ""
        self._uidls: dict[int, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def login(self, username: str, secret: str, method: Any = "auto") -> None:
        self._user = username
        self._source.login(username, secret, method)

    def listing(self) -> Any:
        listed = self._source.listing()
        self._uidls = {item.number: item.uidl.decode("ascii", "replace") for item in listed}
        return listed

    def retrieve(self, numbers: Sequence[int], window: int = 8) -> Iterator[Any]:
        for message in self._source.retrieve(numbers, window):
            self._times.note(self._user, self._uidls.get(message.number, ""), message.number)
            yield message


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _peak_rss_mib() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


# --- the peers ----------------------------------------------------------------------------


def getmail_account() -> tuple[int, int, Path] | None:
    """(uid, gid, home) of the unprivileged getmail user, created if needed; None when this
    process is not root (getmail then runs as the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(GETMAIL_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", GETMAIL_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(GETMAIL_USER)
    return entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)


# Debian's getmail6 6.18 installs its SIGCHLD handler only after fork(): when the delivery
# child ends first, the signal is lost and the parent waits out its socket timeout (180 s),
# then fails the message and ends the account's run (getmail6 issue #226; upstream later
# replaced this with multiprocessing's join). Under load that hit one delivery in ~200 here.
# The benchmark runs the Debian package with only that wait replaced by a plain waitpid, so
# it measures getmail's work, not the race.
GETMAIL_WAIT_FIX = """\
import os, sys
from getmailcore import baseclasses
from getmailcore.exceptions import getmailOperationError


def _prepare_child(self):
    pass


def _wait_for_child(self, childpid):
    pid, status = os.waitpid(childpid, 0)
    if os.WIFSIGNALED(status):
        raise getmailOperationError(
            "child pid %d killed by signal %d" % (pid, os.WTERMSIG(status)))
    if not os.WIFEXITED(status):
        raise getmailOperationError("child pid %d failed to exit" % pid)
    return os.WEXITSTATUS(status)


baseclasses.ForkingBase._prepare_child = _prepare_child
baseclasses.ForkingBase._wait_for_child = _wait_for_child
sys.argv[0] = "getmail"
with open("/usr/bin/getmail") as source:
    code = compile(source.read(), "/usr/bin/getmail", "exec")
exec(code, {"__name__": "__main__", "__file__": "/usr/bin/getmail"})
"""


def run_getmail(label: str, boxes: list[Mailbox], port: int, ca_file: Path, work: Path) -> Row:
    """getmail6 over every mailbox: one rc file and one `getmail` run per mailbox, in
    sequence (a cron loop over rc files).

    getmail runs with `GETMAIL_WAIT_FIX` (its lost-SIGCHLD race removed). Should an attempt
    still fail, it is run again on an emptied Maildir (up to 3 times); the row counts the
    attempts that completed and reports the others, and their time, apart.
    """
    account = getmail_account()
    base = (account[2] if account else work) / f"wire-{os.getpid()}-{label}"
    shutil.rmtree(base, ignore_errors=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    prefix: list[str] = []
    if account is not None:
        uid, gid, home = account
        prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups"]
        env["HOME"] = str(home)
    launcher = work / "getmail_wait_fix.py"
    launcher.write_text(GETMAIL_WAIT_FIX)
    launcher.chmod(0o644)
    seconds = cpu = rss = lost_seconds = 0.0
    seen: dict[str, int] = {}
    failures: list[str] = []
    for box in boxes:
        for attempt in range(1, 4):
            root = base / box.name
            shutil.rmtree(root, ignore_errors=True)
            getmaildir, dest = root / "getmail", root / "Maildir"
            getmaildir.mkdir(parents=True)
            for sub in ("cur", "new", "tmp"):
                (dest / sub).mkdir(parents=True)
            (getmaildir / "getmailrc").write_text(
                "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
                f"port = {port}\nusername = {box.name}\npassword = {box.password}\n"
                f"ca_certs = {ca_file}\n\n"
                f"[destination]\ntype = Maildir\npath = {dest}/\n\n"
                "[options]\nverbose = 0\nread_all = true\ndelete = false\n"
            )
            if account is not None:
                for path in [base, root, *root.rglob("*")]:
                    os.chown(path, account[0], account[1])
            argv = [*prefix, "/usr/bin/python3", str(launcher), "--getmaildir", str(getmaildir)]
            argv += ["--rcfile", "getmailrc"]
            log = work / f"{label}-{box.name}-{attempt}.log"
            took, used, peak = _run_command(argv, log=log, env=env, check=False)
            count = sum(1 for sub in ("new", "cur") for _ in (dest / sub).iterdir())
            if count == box.messages and not log.read_text(errors="replace").count("error"):
                seconds, cpu, rss = seconds + took, cpu + used, max(rss, peak)
                seen[box.name] = count
                break
            lost_seconds += took
            failures.append(
                f"{box.name} attempt {attempt}: {count} of {box.messages}, "
                + log.read_text(errors="replace").strip().splitlines()[-1][:200]
            )
        shutil.rmtree(base / box.name, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    check_counts(label, {b.name: b.messages for b in boxes}, seen)
    extra: dict[str, Any] = {"failed_attempts": failures, "failed_attempts_seconds": lost_seconds}
    total = sum(b.bytes for b in boxes)
    return Row(label, sum(seen.values()), total, seconds, cpu, rss, None, extra)


def run_notmuch(boxes: list[Mailbox], mail_root: Path, work: Path) -> Row:
    database, config = work / "notmuch-db", work / "notmuch-config"
    database.mkdir()
    config.write_text(
        f"[database]\npath={database}\nmail_root={mail_root}\n\n"
        "[new]\ntags=unread;inbox;\nignore=tmp;/(^|/)dovecot[^/]*$/;\n\n"
        "[maildir]\nsynchronize_flags=false\n"
    )
    env = {**os.environ, "NOTMUCH_CONFIG": str(config)}
    seconds, cpu, rss = _run_command(
        ["notmuch", "new", "--quiet"], log=work / "notmuch.log", env=env
    )
    seen = {}
    for box in boxes:
        counted = subprocess.run(
            ["notmuch", "count", f"folder:{box.name}/Maildir"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        seen[box.name] = int(counted.stdout)
    check_counts("notmuch", {b.name: b.messages for b in boxes}, seen)
    return Row("notmuch", sum(seen.values()), sum(b.bytes for b in boxes), seconds, cpu, rss)


# --- the run ------------------------------------------------------------------------------


def machine(dovecot_version: str, postgres_version: str) -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )

    def version(*argv: str) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError:
            return "not installed"
        return (out.stdout or out.stderr).strip().splitlines()[0] if out else ""

    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "dovecot": dovecot_version,
        "postgresql": postgres_version,
        "getmail": version("getmail", "--version"),
        "notmuch": version("notmuch", "--version"),
    }


def _server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'} (embedded)"


def _database_url(url: str, name: str) -> str:
    from archive.index.database import ensure_database

    base, _, rest = url.partition("?")
    server = base.rsplit("/", 1)[0]
    query = f"?{rest}" if rest else ""
    ensure_database(f"{server}/postgres{query}", name)
    return f"{server}/{name}{query}"


def _row_from(name: str, result: dict[str, Any], boxes: list[Mailbox]) -> Row:
    check_counts(name, {b.name: b.messages for b in boxes}, result["seen"])
    extra = {
        k: v
        for k, v in result.items()
        if k not in {"seconds", "cpu_seconds", "peak_rss_mib", "postgres_cpu_seconds", "seen"}
        and k != "bytes"
    }
    return Row(
        name,
        sum(result["seen"].values()),
        sum(b.bytes for b in boxes),
        result["seconds"],
        result["cpu_seconds"],
        result["peak_rss_mib"],
        result.get("postgres_cpu_seconds"),
        extra,
    )


def _check_dovecot(dovecot: Any, boxes: list[Mailbox], after: str) -> None:
    seen = {box.name: dovecot.message_count(box.name) for box in boxes}
    check_counts(f"Dovecot after {after}", {b.name: b.messages for b in boxes}, seen)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from archive.index.database import embedded_pgdata, start_embedded, stop_embedded
    from tests.support.dovecot import running_dovecot

    for tool in ["dovecot"] + (["getmail", "notmuch"] if args.peers else []):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (Debian: dovecot-pop3d, getmail6, notmuch)")
    work = Path(tempfile.mkdtemp(prefix="mailarchive-wire-"))
    work.chmod(0o755)
    rows: dict[str, Row] = {}
    load = [os.getloadavg()]
    try:
        with running_dovecot(work) as dovecot:
            dovecot_version = subprocess.run(
                ["dovecot", "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            _say(f"writing {args.mailboxes} x {args.messages} messages (seed {args.seed})")
            started = time.perf_counter()
            boxes = load_corpus(dovecot, args.seed, args.mailboxes, args.messages)
            total_bytes = sum(b.bytes for b in boxes)
            _say(f"corpus: {total_bytes / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s")
            pg_data = work / "pg"
            url = start_embedded(pg_data)
            pgdata = embedded_pgdata(pg_data)
            postgres_version = _server_version(url)
            if args.peers:
                rows["notmuch"] = _say_row(run_notmuch(boxes, dovecot.home_root, work))
            spec: dict[str, Any] = {
                "host": dovecot.host,
                "ca_file": str(dovecot.tls.ca_file),
                "parallel": args.parallel,
                "boxes": [asdict(b) for b in boxes],
                "pgdata": str(pgdata),
                "watch_timeout": 1800,
            }
            one_way = args.rtt_ms / 2000
            with DelayProxy(dovecot.host, dovecot.pop3s_port, one_way) as proxy:
                targets = [("", dovecot.pop3s_port), (f"@{args.rtt_ms}ms", proxy.port)]
                for suffix, port in targets[: 2 if args.rtt_ms else 1]:
                    name = f"raw{suffix}"
                    result = run_python_row("raw", {**spec, "label": name, "port": port}, work)
                    served = {b.name: b.served_bytes for b in boxes}
                    if result["bytes"] != served:
                        raise AssertionError(f"{name}: {result['bytes']} bytes, not {served}")
                    rows[name] = _say_row(_row_from(name, result, boxes))
                    _check_dovecot(dovecot, boxes, name)
                    name = f"mailarchive{suffix}"
                    database = f"wire_{len(rows)}"
                    archive_spec = {
                        **spec,
                        "label": name,
                        "port": port,
                        "database_url": _database_url(url, database),
                        "run_dir": str(work / database),
                    }
                    result = run_python_row("archive", archive_spec, work)
                    rows[name] = _say_row(_row_from(name, result, boxes))
                    _check_dovecot(dovecot, boxes, name)
                    shutil.rmtree(work / database, ignore_errors=True)
                if args.peers:
                    for suffix, port in targets[: 2 if args.rtt_ms else 1]:
                        name = f"getmail6{suffix}"
                        rows[name] = _say_row(
                            run_getmail(name, boxes, port, dovecot.tls.ca_file, work)
                        )
                        _check_dovecot(dovecot, boxes, name)
            stop_embedded(pg_data)
        load.append(os.getloadavg())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(args),
        "corpus": {
            "seed": args.seed,
            "mailboxes": args.mailboxes,
            "messages": sum(b.messages for b in boxes),
            "bytes": total_bytes,
        },
        "parallel": args.parallel,
        "rtt_ms": args.rtt_ms,
        "load": [f"{a:.1f} / {b:.1f} / {c:.1f}" for a, b, c in load],
        "machine": machine(dovecot_version, postgres_version),
        "rows": {name: {**asdict(row), **_derived(row)} for name, row in rows.items()},
        "ratios": ratios(rows, args.rtt_ms),
    }


def _derived(row: Row) -> dict[str, Any]:
    pg = row.postgres_per_1000()
    return {
        "msg_per_s": round(row.msg_per_s, 1),
        "mb_per_s": round(row.mb_per_s, 2),
        "cpu_s_per_1000": round(row.cpu_per_1000(), 2),
        "postgres_cpu_s_per_1000": None if pg is None else round(pg, 2),
    }


def ratios(rows: dict[str, Row], rtt_ms: int) -> dict[str, float]:
    slow = f"@{rtt_ms}ms"
    pairs = [
        ("mailarchive", "raw"),
        ("mailarchive", "notmuch"),
        ("mailarchive", "getmail6"),
        (f"mailarchive{slow}", f"raw{slow}"),
        (f"mailarchive{slow}", f"getmail6{slow}"),
        (f"mailarchive{slow}", "mailarchive"),
        (f"getmail6{slow}", "getmail6"),
    ]
    return {
        f"{a} / {b}": round(rows[a].msg_per_s / rows[b].msg_per_s, 3)
        for a, b in pairs
        if a in rows and b in rows
    }


_WHAT = {
    "notmuch": "`notmuch new` over the same Maildirs (one process, single-threaded)",
    "raw": "raw limit: pipelined RETR, bytes read and hashed only, {p} mailboxes at once",
    "mailarchive": "mailarchive end to end, {p} mailboxes at once, embedded PostgreSQL",
    "getmail6": "getmail6 to a Maildir, one rc file per mailbox, in sequence",
}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| row | what | msg/s | MB/s | CPU s / 1,000 msg (+ PostgreSQL) | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, row in result["rows"].items():
        base, _, delay = name.partition("@")
        what = _WHAT[base].format(p=result["parallel"])
        if delay:
            what += f", through the delay proxy ({delay} round trip)"
        cpu = f"{row['cpu_s_per_1000']:.1f}"
        if row["postgres_cpu_s_per_1000"] is not None:
            cpu += f" + {row['postgres_cpu_s_per_1000']:.1f}"
        lines.append(
            f"| {name} | {what} | {row['msg_per_s']:,.1f} | {row['mb_per_s']:.1f} | {cpu} "
            f"| {row['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    corpus, m = result["corpus"], result["machine"]
    out = [
        f"`{result['command']}`, {result['when']}: {corpus['mailboxes']} mailboxes, "
        f"{corpus['messages']:,} messages, {corpus['bytes'] / 1e6:.0f} MB (seed {corpus['seed']}); "
        f"load average (1/5/15 min) {result['load'][0]} before, {result['load'][-1]} after.",
        "",
        table(result),
        "",
        "Ratios (messages per second, same run):",
        "",
    ]
    out += [f"- {pair}: **{value:.3g}**" for pair, value in result["ratios"].items()]
    busy = [
        f"{name} {row['extra']['machine_busy']:.0%}"
        for name, row in result["rows"].items()
        if "machine_busy" in row["extra"]
    ]
    if busy:
        out.append(f"- the machine's {m['cores']} cores busy during the row: {', '.join(busy)}")
    for name, row in result["rows"].items():
        if "last_retr_to_searchable_s" in row["extra"]:
            extra = row["extra"]
            out.append(
                f"- {name}: last RETR to searchable {extra['last_retr_to_searchable_s']:.2f} s "
                f"(found by `{extra['query']}`, one query {extra['search_query_s'] * 1000:.0f} ms)"
            )
    out += [
        "",
        f"Machine: {m['cores']} cores, {m['cpu']}, {m['kernel']}, Python {m['python']}, "
        f"Dovecot {m['dovecot']}, {m['postgresql']}, {m['getmail']}, {m['notmuch']}.",
    ]
    return "\n".join(out)


def write_docs(text: str, docs: Path = DOCS) -> None:
    """Put `text` between the wire markers of docs/benchmarks.md (a new section if none)."""
    current = docs.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        docs.write_text(head + block + tail)
    else:
        section = "## Wire speed: `uv run python -m benchmarks.wire`\n\n"
        docs.write_text(current.rstrip("\n") + "\n\n" + section + block + "\n")


def _command(args: argparse.Namespace) -> str:
    peers = "" if args.peers else " --no-peers"
    return (
        f"uv run python -m benchmarks.wire --mailboxes {args.mailboxes} --messages "
        f"{args.messages} --parallel {args.parallel} --rtt-ms {args.rtt_ms}{peers}"
    )


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _say_row(row: Row) -> Row:
    pg = row.postgres_per_1000()
    _say(
        f"{row.name}: {row.messages} messages in {row.seconds:.1f} s = {row.msg_per_s:,.1f} "
        f"msg/s, {row.mb_per_s:.1f} MB/s, CPU {row.cpu_per_1000():.2f} s/1,000"
        + (f" + PostgreSQL {pg:.2f}" if pg is not None else "")
        + f", peak RSS {row.peak_rss_mib:.0f} MiB"
        + (f", {row.extra}" if row.extra else "")
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mailboxes", type=int, default=40)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument(
        "--rtt-ms", type=int, default=20, help="round trip of the delay-proxy rows (0: none)"
    )
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--row", choices=("raw", "archive"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        spec = json.loads(args.spec.read_text())
        result = _row_raw(spec) if args.row == "raw" else _row_archive(spec)
        print(json.dumps(result))
        return
    result = run(args)
    text = report(result)
    print(text)
    print(json.dumps(result, indent=2), file=sys.stderr)
    if args.write_docs:
        write_docs(text)
        _say(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
