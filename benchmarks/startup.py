"""The fixed cost of starting `mailarchive`: wall time of a few commands, as ratios against
`python -c pass` measured in the same run, for one or more source trees side by side.

    uv run python -m benchmarks.startup [--repeat 7] [--tree before=/tmp/old-src] [--tree now=.]

A tree is a checkout of the project (e.g. `git archive <rev> | tar -x -C DIR`); each command
runs as `python -c "…main()"` with the tree first on sys.path, in this environment, with the
database of MAILARCHIVE_* (start it first, e.g. `mailarchive db start`). The trees' runs are
interleaved, so a busy machine slows every tree alike. Prints a Markdown table of medians.

Bytecode is cached (in a temporary PYTHONPYCACHEPREFIX, warmed by one unmeasured round), as on
a user's machine from the second run on, even where PYTHONDONTWRITEBYTECODE is set;
`--no-bytecode-cache` measures compiling every module on every start instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCH = (
    "import sys; sys.path.insert(0, {tree!r}); sys.argv[0] = 'mailarchive'; "
    "from archive.app.cli import main; main()"
)

COMMANDS: dict[str, list[str]] = {
    "mailarchive --help": ["--help"],
    "mailarchive search --help": ["search", "--help"],
    "mailarchive search invoice (database)": ["search", "invoice", "-n", "5"],
    "mailarchive db url (database)": ["db", "url"],
}


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[-3:])} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def _argv(tree: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-c", LAUNCH.format(tree=str(tree)), *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--tree", action="append", default=[], metavar="NAME=DIR", help="default: now=."
    )
    parser.add_argument("--no-bytecode-cache", action="store_true")
    options = parser.parse_args()
    env = dict(os.environ)
    if options.no_bytecode_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="startup-pyc-")
    trees = [
        (name, Path(path).resolve())
        for name, path in (t.split("=", 1) for t in (options.tree or ["now=."]))
    ]
    env_note = os.environ.get("MAILARCHIVE_DATA_DIR") or os.environ.get("MAILARCHIVE_DATABASE_URL")
    # Warm the file cache and the database once per tree, unmeasured.
    for _, tree in trees:
        for args in COMMANDS.values():
            _time(_argv(tree, args), env)
    baseline: list[float] = []
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.repeat):
        baseline.append(_time([sys.executable, "-c", "pass"], env))
        for label, args in COMMANDS.items():
            for name, tree in trees:
                samples.setdefault((label, name), []).append(_time(_argv(tree, args), env))
    base = statistics.median(baseline)
    cache = "no bytecode cache" if options.no_bytecode_cache else "bytecode cached"
    print(
        f"python -c pass: {base * 1000:.0f} ms (median of {options.repeat}); {cache}; "
        f"data: {env_note}"
    )
    print()
    header = " | ".join(f"{name}: s (× pass)" for name, _ in trees)
    print(f"| command | {header} |")
    print("|---|" + "---|" * len(trees))
    for label in COMMANDS:
        cells = []
        for name, _ in trees:
            value = statistics.median(samples[(label, name)])
            cells.append(f"{value:.2f} (×{value / base:.0f})")
        print(f"| `{label}` | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
