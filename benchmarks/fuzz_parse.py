"""Coverage-guided fuzzing of `parse_message` with atheris (libFuzzer).

    uv run python benchmarks/fuzz_parse.py -max_total_time=60          # on demand
    uv run python benchmarks/fuzz_parse.py -runs=20000                 # a fixed count

Seeds are the adversarial set of tests/unit/test_hostile_mime.py plus ../shared/corpus when
it is there. A finding is any exception out of `parse_message` (it must never raise), an
attachment whose hash does not match its bytes, or a crash; libFuzzer writes the input to
crash-<sha1> in the current directory. CI runs a short, time-boxed session through
tests/unit/test_fuzz_smoke.py; the count of executions is printed at the end ("Done N runs").
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["archive"]):
    from archive.mime import ParseLimits, parse_message

LIMITS = ParseLimits(max_parts=200, max_depth=16, max_header_bytes=64 * 1024)


def one_input(data: bytes) -> None:
    parsed = parse_message(data, LIMITS)
    for attachment in parsed.attachments:
        if attachment.sha256 != hashlib.sha256(attachment.data).hexdigest():
            raise AssertionError(f"attachment {attachment.path}: hash does not match its bytes")


def _seed_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from tests.unit.test_hostile_mime import ADVERSARIAL

    seeds = Path(tempfile.mkdtemp(prefix="mailarchive-fuzz-seeds-"))
    for n, data in enumerate(sorted(ADVERSARIAL.values(), key=len)):
        if len(data) <= 1 << 20:
            (seeds / f"adversarial-{n}").write_bytes(data)
    corpus = root.parent / "shared" / "corpus"
    if corpus.is_dir():
        for n, path in enumerate(sorted(corpus.rglob("*.eml"))):
            (seeds / f"corpus-{n}").write_bytes(path.read_bytes())
    return seeds


def main() -> None:
    args = [sys.argv[0], *sys.argv[1:]]
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(str(_seed_dir()))
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
