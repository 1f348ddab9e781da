"""Parse speed per core: `parse_message` over the issue-12 corpus and the shared corpus.

    uv run python -m benchmarks.parse_speed [--mailboxes 4] [--messages 250] [--rounds 3]
    uv run python -m benchmarks.parse_speed --full        # the issue's 40 x 250 (620 MB)
    uv run python -m benchmarks.parse_speed --demo        # the demo generator's small mail
    uv run python -m benchmarks.parse_speed --profile out.prof

One process, one thread, so messages per second is per core. The generated mail is
`benchmarks.corpus.generate(seed=12, ...)`, the throughput issue's corpus (the first
`--mailboxes` of its 40; `--full` is all of it, made a mailbox at a time so 620 MB never
sits in memory); the corpus is `shared/corpus` beside the checkout (tests.support.corpus
finds it), when present. CPU time (`time.process_time`) of parsing a set (with `--full`, a
mailbox) is the best of `--rounds`, to keep the noise of a shared machine out; a ratio
between two trees run interleaved is what carries over. "both" is the messages of both
sets over the sum of their times.

"parse and extract" adds, for every attachment the parser gave no text, what the pipeline
would ask the extractor for (`archive.extract.extract_document`, in this process: the
readers' own cost, without the worker round trip).
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from archive.mime import parse_message

Chunks = Callable[[], Iterable[list[bytes]]]  # the messages, a list at a time


def _corpus(where: str | None) -> list[bytes]:
    from tests.support.corpus import BESIDE

    root = Path(where) if where else BESIDE
    return [path.read_bytes() for path in sorted(root.rglob("*.eml"))] if root.is_dir() else []


def _generated(mailboxes: int, messages: int, keep: bool) -> Chunks:
    """The generated corpus: held whole, or (`keep` false) made again a mailbox at a time."""
    from benchmarks.corpus import generate

    def by_mailbox() -> Iterable[list[bytes]]:
        made = generate(seed=12, mailboxes=mailboxes, messages=messages)
        for _, box in itertools.groupby(made, key=lambda item: item[0]):
            yield [raw for _, raw in box]

    if not keep:
        return by_mailbox
    held = [raw for box in by_mailbox() for raw in box]
    return lambda: [held]


def _demo(mailboxes: int, messages: int) -> Chunks:
    from archive.app.demo_data import generate_mailboxes

    held = [m for box in generate_mailboxes(mailboxes, messages).values() for m in box]
    return lambda: [held]


def _one_round(messages: list[bytes], extract: bool) -> float:
    """CPU seconds of one pass over `messages`."""
    from archive.extract import ExtractLimits, extract_document

    limits = ExtractLimits()
    started = time.process_time()
    for raw in messages:
        parsed = parse_message(raw)
        if extract:
            for attachment in parsed.attachments:
                if not attachment.text:
                    extract_document(
                        attachment.data, attachment.content_type, attachment.filename, limits
                    )
    return time.process_time() - started


def _best(chunks: Chunks, rounds: int, extract: bool) -> tuple[int, int, float]:
    """(messages, bytes, CPU seconds): each chunk's best of `rounds`, summed."""
    count = size = 0
    spent = 0.0
    for chunk in chunks():
        spent += min(_one_round(chunk, extract) for _ in range(rounds))
        count += len(chunk)
        size += sum(map(len, chunk))
    return count, size, spent


def _row(count: int, size: int, seconds: float) -> dict[str, float]:
    return {
        "messages": count,
        "mb": round(size / 1e6, 1),
        "cpu_s": round(seconds, 3),
        "msg_per_cpu_s": round(count / seconds) if seconds else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=4)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--full", action="store_true", help="the issue's 40 x 250 messages")
    parser.add_argument("--demo", action="store_true", help="the demo generator's mail instead")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--extract", action="store_true", help="parse and extract")
    parser.add_argument("--corpus", metavar="DIR", help="another shared/corpus")
    parser.add_argument("--profile", metavar="FILE", help="cProfile one round into FILE")
    args = parser.parse_args()
    mailboxes, messages = (40, 250) if args.full else (args.mailboxes, args.messages)
    if args.demo:
        generated = _demo(mailboxes, messages)
    else:
        generated = _generated(mailboxes, messages, keep=not args.full)
    held = _corpus(args.corpus)
    corpus: Chunks = lambda: [held]  # noqa: E731
    if args.profile:
        profile = cProfile.Profile()
        for chunk in [*generated(), held]:
            profile.enable()
            _one_round(chunk, args.extract)
            profile.disable()
        profile.dump_stats(args.profile)
    g = _best(generated, args.rounds, args.extract)
    c = _best(corpus, args.rounds, args.extract)
    results = {
        "generated": {"mailboxes": mailboxes, **_row(*g)},
        "corpus": _row(*c),
        "both": _row(g[0] + c[0], g[1] + c[1], g[2] + c[2]),
        "extract": args.extract,
        "rounds": args.rounds,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
