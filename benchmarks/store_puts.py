"""CPU of the local object store's write path, per message, as the archiver drives it.

    uv run python benchmarks/store_puts.py [--mailboxes 8] [--messages 250] [--rounds 3]

Every message of the seeded corpus (`benchmarks.corpus`) is stored the way
`archive.pipeline.archiver` (`_take`: the original) and `archive.pipeline.ingest`
(`store_attachments`: each decoded attachment, `read_back=False`) call `put_verified`, into
a `GroupSync(LocalStore)` on a fresh folder, synced every 100 objects as a batch would be.
Two modes: `keep` (originals `read_back=False`, the wire benchmark's mailboxes) and `delete`
(originals `read_back=True`, as before a DELE). Reported: CPU ms per message of this
process (`time.process_time`: user + system, the barrier calls included), of which in the
barriers (`sync`), and wall ms per message.

The corpus is generated and parsed once, outside the timed section. For an A/B of two trees,
run this file with `PYTHONPATH=<other tree>`: `archive` is then imported from there (the
line `archive from` says which).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import archive
from archive.mime.parse import parse_message
from archive.store import LocalStore, part_key, put_verified, raw_key
from archive.store.group import GroupSync
from benchmarks.corpus import generate

SYNC_EVERY = 100


@dataclass(frozen=True, slots=True)
class Message:
    raw: bytes
    sha256: str
    parts: tuple[tuple[str, bytes], ...]


def load(mailboxes: int, messages: int) -> list[Message]:
    import hashlib

    corpus = []
    for _, raw in generate(seed=12, mailboxes=mailboxes, messages=messages):
        parsed = parse_message(raw)
        parts = tuple((a.sha256, a.data) for a in parsed.attachments)
        corpus.append(Message(raw, hashlib.sha256(raw).hexdigest(), parts))
    return corpus


def run(corpus: list[Message], root: Path, *, read_back: bool) -> dict[str, float]:
    store = GroupSync(LocalStore(root))
    objects = 0
    in_sync = 0.0
    wall = time.perf_counter()
    start = time.process_time()
    for message in corpus:
        original = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        original.write(message.raw)
        original.seek(0)
        put_verified(
            store,
            raw_key(message.sha256),
            original,
            message.sha256,
            len(message.raw),
            read_back=read_back,
        )
        original.close()
        objects += 1
        for sha256, data in message.parts:
            put_verified(
                store, part_key(sha256), io.BytesIO(data), sha256, len(data), read_back=False
            )
            objects += 1
        if objects >= SYNC_EVERY:
            before = time.process_time()
            store.sync()
            in_sync += time.process_time() - before
            objects = 0
    before = time.process_time()
    store.sync()
    in_sync += time.process_time() - before
    cpu = time.process_time() - start
    wall = time.perf_counter() - wall
    n = len(corpus)
    return {
        "cpu_ms_per_msg": 1000 * cpu / n,
        "sync_ms_per_msg": 1000 * in_sync / n,
        "wall_ms_per_msg": 1000 * wall / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mailboxes", type=int, default=8)
    parser.add_argument("--messages", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="keep,delete")
    parser.add_argument("--dir", type=Path, default=None, help="where the stores are made")
    args = parser.parse_args()
    print("archive from", Path(archive.__file__).parent.parent)
    corpus = load(args.mailboxes, args.messages)
    print(
        f"{len(corpus)} messages, {sum(len(m.parts) for m in corpus)} attachments, "
        f"{sum(len(m.raw) + sum(len(d) for _, d in m.parts) for m in corpus) >> 20} MiB"
    )
    base = Path(tempfile.mkdtemp(prefix="store-puts-", dir=args.dir))
    try:
        for round_ in range(args.rounds):
            for mode in args.modes.split(","):
                root = base / f"{mode}-{round_}"
                result = run(corpus, root, read_back=mode == "delete")
                print(json.dumps({"mode": mode, "round": round_} | result))
                shutil.rmtree(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
