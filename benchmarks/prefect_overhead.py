"""What Prefect adds per mailbox: the same work with and without the archive flow.

    uv run python -m benchmarks.prefect_overhead [--sizes 100,1000] [--profile]

Starts an embedded PostgreSQL (the archive's database and, beside it, Prefect's own, as
`mailarchive server` does), a real Prefect server on it (`prefect server start`), and the
shipped fake POP3 server holding empty mailboxes, all on one host. For each size M:

- (a) without Prefect: M mailboxes through `Archiver.run` (the shared `get_archiver`, as the
  flow's task calls it) in a thread pool of `max_parallel_mailboxes`;
- (b) with Prefect: M other mailboxes of the same kind through the `archive-mailboxes` flow
  (`flows.archive_flow.run_archive`, what `mailarchive run` calls), a task run each.

Every mailbox is new to the archive in both, so the work is the same: connect, log in,
list, record the login, QUIT. Reported: seconds and ms per mailbox of each, and the
overhead (b - a) / M in ms. A warm-up of a few mailboxes runs first through both paths.
`--profile` prints where the flow run's threads spend their time (yappi, CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(api_url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"Prefect server at {api_url} did not answer within {timeout:.0f}s")


def _config(path: Path, names: list[str], host: str, port: int) -> Path:
    path.write_text(
        "\n".join(
            f'[[mailbox]]\nname = "{name}"\nhost = "{host}"\nport = {port}\ntls = "none"\n'
            f'username = "{name}"\npassword_env = "OVERHEAD_PW"\nmax_connections = 8\n'
            for name in names
        )
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    from archive.config import Settings, load_mailbox_file
    from archive.index.database import start_embedded, stop_embedded
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server
    from migrations import upgrade as migrate

    work = Path(tempfile.mkdtemp(prefix="mailarchive-overhead-"))
    settings = Settings(data_dir=work / "data", store_url=(work / "objects").as_uri())
    url = start_embedded(settings.data_dir)
    server: subprocess.Popen[bytes] | None = None
    try:
        migrate(url)
        from archive.app.prefect_server import plan_server

        port = free_port()
        plan = plan_server(settings, "127.0.0.1", port, None)
        log = (work / "prefect-server.log").open("wb")
        server = subprocess.Popen(plan.argv, env=plan.env, stdout=log, stderr=log)
        wait_healthy(plan.api_url)
        os.environ["PREFECT_API_URL"] = plan.api_url
        os.environ["OVERHEAD_PW"] = "pw"

        from archive.pipeline.build import get_archiver
        from archive.pipeline.result import MailboxFailed
        from flows.archive_flow import Prepared, run_archive

        groups = {"warm": args.warmup, **{str(size): size for size in sizes}}
        names = {
            (path, group): [f"{path}{group}-{i}" for i in range(count)]
            for group, count in groups.items()
            for path in ("a", "b")
        }
        boxes = {name: FakeMailbox("pw", []) for group in names.values() for name in group}
        rows: list[dict[str, Any]] = []
        with FakePop3Server(boxes) as pop3:
            archiver = get_archiver(settings)

            def without_prefect(group: str) -> float:
                path = _config(work / f"a{group}.toml", names["a", group], pop3.host, pop3.port)
                configs = load_mailbox_file(path).select(None)

                def one(box: Any) -> None:
                    try:
                        archiver.run(box)
                    except MailboxFailed as exc:
                        sys.exit(f"{box.name}: {exc.result.error}")

                started = time.perf_counter()
                with ThreadPoolExecutor(settings.max_parallel_mailboxes) as pool:
                    list(pool.map(one, configs))
                return time.perf_counter() - started

            def with_prefect(group: str) -> float:
                path = _config(work / f"b{group}.toml", names["b", group], pop3.host, pop3.port)
                prepared = Prepared(settings, load_mailbox_file(path))
                started = time.perf_counter()
                ok, results = run_archive(path, None, prepared)
                seconds = time.perf_counter() - started
                if not ok or len(results) != len(names["b", group]):
                    sys.exit(f"flow run failed: {[r['error'] for r in results if r['error']]}")
                return seconds

            without_prefect("warm")
            with_prefect("warm")
            for size in sizes:
                cpu = time.process_time()
                a = without_prefect(str(size))
                cpu_a, cpu = time.process_time() - cpu, time.process_time()
                if args.profile:
                    import yappi  # type: ignore[import-not-found]  # uv run --with yappi

                    yappi.set_clock_type("cpu")
                    yappi.start()
                b = with_prefect(str(size))
                cpu_b = time.process_time() - cpu
                if args.profile:
                    yappi.stop()
                    stats = yappi.get_func_stats()
                    stats.sort("ttot").print_all(
                        out=sys.stderr,
                        columns={0: ("name", 90), 1: ("ncall", 9), 3: ("ttot", 8)},
                    )
                    yappi.clear_stats()
                row = {
                    "mailboxes": size,
                    "without_prefect_s": round(a, 2),
                    "with_prefect_s": round(b, 2),
                    "without_ms_per_mailbox": round(1000 * a / size, 1),
                    "with_ms_per_mailbox": round(1000 * b / size, 1),
                    "overhead_ms_per_mailbox": round(1000 * (b - a) / size, 1),
                    # CPU of this process (the Prefect server and PostgreSQL are others).
                    "cpu_ms_per_mailbox_without": round(1000 * cpu_a / size, 1),
                    "cpu_ms_per_mailbox_with": round(1000 * cpu_b / size, 1),
                }
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
        print(json.dumps({"parallel": settings.max_parallel_mailboxes, "runs": rows}, indent=2))
    finally:
        if server is not None:
            if "prefect" in sys.modules:  # send the last logs and events before it stops
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                APILogWorker.drain_all(timeout=30)
                EventsWorker.drain_all(timeout=30)
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        from archive.pipeline import build

        build.reset()
        stop_embedded(settings.data_dir)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
