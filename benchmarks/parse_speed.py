"""Parse speed per core: `parse_message` over generated mail and the shared corpus.

    uv run python -m benchmarks.parse_speed [--mailboxes 4] [--messages 250] [--rounds 3]

One process, one thread, so messages per second is per core. The generated mail is the demo
generator's (as `benchmarks.throughput` archives it); the corpus is `shared/corpus` beside the
checkout (tests.support.corpus finds it), when present. Best of `--rounds`, to keep the noise
of a shared machine out; a ratio between two trees run back to back is what carries over.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from archive.app.demo_data import generate_mailboxes
from archive.mime import parse_message


def _corpus() -> list[bytes]:
    from tests.support.corpus import BESIDE

    root = Path(BESIDE)
    return [path.read_bytes() for path in sorted(root.rglob("*.eml"))] if root.is_dir() else []


def _rate(messages: list[bytes], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for raw in messages:
            parse_message(raw)
        best = min(best, time.process_time() - started)
    return len(messages) / best if best else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=4)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    generated = [
        m for box in generate_mailboxes(args.mailboxes, args.messages).values() for m in box
    ]
    corpus = _corpus()
    results = {
        "generated": {
            "messages": len(generated),
            "msg_per_cpu_s": round(_rate(generated, args.rounds)),
        },
        "corpus": {"messages": len(corpus), "msg_per_cpu_s": round(_rate(corpus, args.rounds))},
        "both": {
            "messages": len(generated) + len(corpus),
            "msg_per_cpu_s": round(_rate(generated + corpus, args.rounds)),
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
