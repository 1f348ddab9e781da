"""A run's fixed overhead: `mailarchive run` on a mailbox with nothing new, as ratios.

    uv run python -m benchmarks.run_overhead [--repeat 3]

Issue 13's target: a run's fixed overhead ≤ 3 s with a Prefect server up and ≤ 10 s without
one. One mailbox on the project's own POP3 server (`archive.pop3.fake`, plaintext on
loopback) holds 20 messages; a first `mailarchive run` archives them, then each timed run
finds nothing new, so what it costs is the fixed part: start-up, settings, the database
check, the flow run and its task run, one POP3 session, the results. Timed twice:

- without `PREFECT_API_URL`: the run starts a temporary Prefect server of its own;
- with a server up (`mailarchive server`, started once here, waited for), as under `serve`
  or a worker.

Each time is the median of `--repeat` runs, with `python -c pass` timed in the same run.
Bytecode is cached (a temporary PYTHONPYCACHEPREFIX, warmed by the unmeasured first run), as
on a user's machine from the second run on, even where PYTHONDONTWRITEBYTECODE is set (this
sandbox sets it: without a cache every start compiles Prefect's modules again, seconds);
`--no-bytecode-cache` measures that instead.
The archive is a fresh data directory (embedded PostgreSQL) under a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archive.app.demo_data import generate_mailboxes
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from benchmarks.prefect_overhead import free_port, wait_healthy

_PASSWORD_ENV = "BENCH_OVERHEAD_PASSWORD"


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return seconds


def _median(argv: list[str], env: dict[str, str], repeat: int) -> float:
    return statistics.median(_timed(argv, env) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-bytecode-cache", action="store_true")
    args = parser.parse_args()
    mailarchive = str(Path(sys.executable).parent / "mailarchive")
    work = Path(tempfile.mkdtemp(prefix="mailarchive-overhead-"))
    messages = next(iter(generate_mailboxes(1, 20).values()))
    password = "bench-overhead-password"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
        "MAILARCHIVE_DATA_DIR": str(work / "data"),
        "PREFECT_HOME": str(work / "prefect"),
        "DO_NOT_TRACK": "1",
        _PASSWORD_ENV: password,
    }
    if args.no_bytecode_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    server_process: subprocess.Popen[bytes] | None = None
    try:
        with FakePop3Server({"bench": FakeMailbox(password=password, messages=messages)}) as pop:
            config = work / "mailboxes.toml"
            config.write_text(
                "[[mailbox]]\n"
                'name = "bench"\n'
                f'host = "{pop.host}"\n'
                f"port = {pop.port}\n"
                'tls = "none"\n'
                'username = "bench"\n'
                f'password_env = "{_PASSWORD_ENV}"\n'
            )
            run = [mailarchive, "run", "--config", str(config)]
            pass_s = _median([sys.executable, "-c", "pass"], env, max(args.repeat, 5))
            _timed(run, env)  # archives the 20 messages; every later run finds nothing new
            without = _median(run, env, args.repeat)
            port = free_port()
            api = f"http://127.0.0.1:{port}/api"
            server_process = subprocess.Popen(
                [mailarchive, "server", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_healthy(api)
            with_server = _median(run, {**env, "PREFECT_API_URL": api}, args.repeat)
    finally:
        if server_process is not None:
            server_process.terminate()
            server_process.wait(timeout=60)
        subprocess.run([mailarchive, "db", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"python -c pass: {pass_s:.3f} s (x1)")
    print(
        f"run, nothing new, no server (a temporary one): {without:.2f} s (x{without / pass_s:.0f})"
    )
    print(f"run, nothing new, server up: {with_server:.2f} s (x{with_server / pass_s:.0f})")


if __name__ == "__main__":
    main()
