"""Where mailarchive's time goes on the wire benchmark's corpus: a py-spy profile.

    uv run python -m benchmarks.wire_profile [--mailboxes 8] [--messages 250] [--parallel 4]

Builds the same seeded corpus in Dovecot as `benchmarks.wire`, then runs only its
mailarchive row (loopback, `--parallel` mailboxes at once, extraction included) under
`py-spy record --idle --subprocesses` (PyPI's py-spy; `uvx py-spy` when it is not on PATH).
Every sample of a mailbox thread is counted, waiting included, so the shares are of wall
time per thread: each sample goes to the first `archive` package below the pipeline
(pop3, mime, store, index, extract), else to the pipeline itself, and its innermost frame
is shown. The raw stacks are kept (`--keep PATH`) for a flame graph.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.wire import _database_url, _say, load_corpus

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def categorize(
    stacks: dict[str, int],
) -> tuple[Counter[str], dict[str, Counter[str]], Counter[str]]:
    """(samples per step in mailbox threads, their innermost frames per step, samples of the
    extraction worker processes by innermost frame: waiting for a task is `Connection._recv`).
    """
    steps: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {}
    workers: Counter[str] = Counter()
    for stack, count in stacks.items():
        parsed = [m for f in stack.split(";") if (m := _FRAME.match(f.strip()))]
        files = [m["file"] for m in parsed]
        leaf = parsed[-1] if parsed else None
        name = f"{leaf['func']} ({leaf['file'].rsplit('site-packages/', 1)[-1]})" if leaf else "?"
        if not any("archive/pipeline/archiver.py" in f for f in files):
            if "archive.extract" in stack or any("archive/extract/" in f for f in files):
                workers[name] += count
            continue  # the main thread waiting for the pool, the search watcher
        step = "pipeline (archive/pipeline)"
        for match in parsed:
            package = re.search(r"archive/(pop3|mime|store|index|extract)/", match["file"])
            if package:
                step = f"archive/{package[1]}"
                break
        steps[step] += count
        leaves.setdefault(step, Counter())[name] += count
    return steps, leaves, workers


def read_raw(path: Path) -> dict[str, int]:
    stacks: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] = stacks.get(stack, 0) + int(count)
    return stacks


def summary(stacks: dict[str, int], top: int = 6) -> str:
    steps, leaves, workers = categorize(stacks)
    total = sum(steps.values())
    out = [f"{total} samples in the mailbox threads (wall time, waiting included):"]
    for step, count in steps.most_common():
        out.append(f"{count / total:6.1%}  {step}")
        for leaf, n in leaves[step].most_common(top):
            out.append(f"          {n / total:6.1%}  {leaf}")
    busy = sum(n for leaf, n in workers.items() if not leaf.startswith("Connection._recv"))
    out.append(f"extraction worker processes: {sum(workers.values())} samples, {busy} busy")
    for leaf, n in workers.most_common(top):
        out.append(f"          {leaf}: {n}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mailboxes", type=int, default=8)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw stacks here")
    args = parser.parse_args()

    from dataclasses import asdict

    from archive.index.database import embedded_pgdata, start_embedded, stop_embedded
    from tests.support.dovecot import running_dovecot

    spy = ["py-spy"] if shutil.which("py-spy") else ["uvx", "py-spy"]
    work = Path(tempfile.mkdtemp(prefix="mailarchive-wire-profile-"))
    work.chmod(0o755)
    try:
        with running_dovecot(work) as dovecot:
            boxes = load_corpus(dovecot, args.seed, args.mailboxes, args.messages)
            url = start_embedded(work / "pg")
            spec: dict[str, Any] = {
                "label": "profile",
                "host": dovecot.host,
                "port": dovecot.pop3s_port,
                "ca_file": str(dovecot.tls.ca_file),
                "parallel": args.parallel,
                "boxes": [asdict(b) for b in boxes],
                "pgdata": str(embedded_pgdata(work / "pg")),
                "watch_timeout": 1800,
                "database_url": _database_url(url, "wire_profile"),
                "run_dir": str(work / "run"),
            }
            (work / "spec.json").write_text(json.dumps(spec))
            raw = work / "stacks.txt"
            _say(f"profiling {args.mailboxes} x {args.messages} messages with {' '.join(spy)}")
            done = subprocess.run(
                [*spy, "record", "--idle", "--subprocesses", "--format", "raw",
                 "--rate", str(args.rate), "--output", str(raw), "--",
                 sys.executable, "-m", "benchmarks.wire", "--row", "archive",
                 "--spec", str(work / "spec.json")],
                check=True, stdout=subprocess.PIPE,
            )  # fmt: skip
            # The row prints its result as one JSON line; py-spy may print after it.
            lines = done.stdout.decode().splitlines()
            result = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
            messages = sum(result["seen"].values())
            _say(
                f"{messages} messages in {result['seconds']:.1f} s (under py-spy) = "
                f"{messages / result['seconds']:.1f} msg/s"
            )
            if args.keep:
                shutil.copyfile(raw, args.keep)
            print(summary(read_raw(raw)))
            stop_embedded(work / "pg")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
