"""The pieces of the wire benchmark (benchmarks/wire.py) that need no network."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from benchmarks.corpus import generate
from benchmarks.wire import (
    BEGIN,
    END,
    busy_since,
    check_counts,
    cpu_ticks,
    maildir_messages,
    served_size,
    write_docs,
    write_maildir,
)
from tests.support.dovecot import Dovecot


def test_the_corpus_is_the_same_for_a_seed_and_differs_for_another() -> None:
    first = list(generate(seed=7, mailboxes=2, messages=6))
    assert first == list(generate(seed=7, mailboxes=2, messages=6))
    assert [name for name, _ in first] == ["user000"] * 6 + ["user001"] * 6
    other = list(generate(seed=8, mailboxes=2, messages=6))
    assert [raw for _, raw in other] != [raw for _, raw in first]


def _maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    return root


def test_the_maildir_writer_writes_what_generate_yields_in_order(tmp_path: Path) -> None:
    messages = [raw for _, raw in generate(seed=3, mailboxes=1, messages=25)]
    owned: list[Path] = []
    written = write_maildir(_maildir(tmp_path / "Maildir"), iter(messages), owner=owned.append)
    assert maildir_messages(tmp_path / "Maildir") == messages
    assert written == sum(len(raw) for raw in messages)
    assert len(owned) == len(messages)
    assert not list((tmp_path / "Maildir" / "tmp").iterdir())


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\r\n\r\nbody\r\n",
        b"Subject: a\r\n\r\nno final line break",
        b"Subject: a\n\nbare\nline feeds\n",
        b"Subject: a\r\n\r\nmixed\nand\r\nending bare",
        b"",
    ],
)
def test_served_size_is_what_dovecot_sends(tmp_path: Path, raw: bytes) -> None:
    assert served_size(raw) == len(Dovecot(tmp_path).served_bytes(raw))


def test_served_size_matches_dovecot_on_the_corpus(tmp_path: Path) -> None:
    dovecot = Dovecot(tmp_path)
    for _, raw in generate(seed=12, mailboxes=1, messages=40):
        assert served_size(raw) == len(dovecot.served_bytes(raw))


def test_counts_must_match_for_every_mailbox() -> None:
    check_counts("row", {"a": 3, "b": 2}, {"a": 3, "b": 2})
    with pytest.raises(AssertionError, match="b: 1 of 2"):
        check_counts("row", {"a": 3, "b": 2}, {"a": 3, "b": 1})
    with pytest.raises(AssertionError, match="b: 0 of 2"):
        check_counts("row", {"a": 3, "b": 2}, {"a": 3})
    with pytest.raises(AssertionError, match="c"):
        check_counts("row", {"a": 3}, {"a": 3, "c": 1})


def test_write_docs_appends_a_section_then_replaces_only_its_block(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nearlier text\n")
    write_docs("first table", docs)
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nearlier text\n")
    assert f"{BEGIN}\nfirst table\n{END}" in text
    docs.write_text(text + "\nnotes written after the block\n")
    write_docs("second table", docs)
    text = docs.read_text()
    assert "first table" not in text
    assert f"{BEGIN}\nsecond table\n{END}" in text
    assert text.count(BEGIN) == 1
    assert text.endswith("notes written after the block\n")


def test_busy_since_counts_the_cpu_this_process_burns() -> None:
    before, started, cpu = cpu_ticks(), time.perf_counter(), time.process_time()
    while time.process_time() - cpu < 0.3:
        pass
    elapsed = time.perf_counter() - started
    share = busy_since(before)
    # Other programs may add to it, nothing takes from it (clock ticks: 10 ms granularity).
    assert 0.3 / (elapsed * (os.cpu_count() or 1)) * 0.8 <= share <= 1.0
