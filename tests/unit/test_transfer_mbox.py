"""mbox written in the mboxrd convention and read back (ours and the standard library's), and
mbox files of each convention read the way mail clients read them."""

from __future__ import annotations

import io
import mailbox
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.transfer import from_line, mbox_entry, read_maildir, read_mbox

WHEN = datetime(2026, 3, 3, 9, 0, 5, tzinfo=UTC)
TRICKY = (
    b"From: a@example.org\r\nSubject: quoting\r\n\r\n"
    b"From here on, a line an mboxo writer would mangle.\r\n"
    b">From one quoted already\r\n>>From two\r\nFrom\r\nFromage\r\n"
)
PLAIN = b"From: b@example.org\r\nSubject: plain\r\n\r\nbody\r\n"


def test_separator_line_carries_sender_and_asctime_date():
    assert from_line("juergen@example.org", WHEN) == (
        b"From juergen@example.org Tue Mar 03 09:00:05 2026\n"
    )
    assert from_line(None, WHEN).startswith(b"From MAILER-DAEMON ")
    assert from_line("a b@x", WHEN).startswith(b"From ab@x ")


def test_mboxrd_quotes_every_from_line_once_more():
    entry = mbox_entry(TRICKY, "a@example.org", WHEN)
    assert b"\n>From here on" in entry
    assert b"\n>>From one quoted" in entry and b"\n>>>From two" in entry
    assert b"\nFrom\r\n" in entry and b"\nFromage" in entry  # not "From " lines
    assert entry.endswith(TRICKY.replace(b"\nFrom here", b"\n>From here")[-20:] + b"\n")


def test_our_reader_gives_back_the_originals_byte_for_byte():
    data = mbox_entry(TRICKY, "a@example.org", WHEN) + mbox_entry(PLAIN, None, WHEN)
    assert list(read_mbox(io.BytesIO(data))) == [TRICKY, PLAIN]


def test_the_standard_library_reads_our_mbox(tmp_path: Path):
    path = tmp_path / "export.mbox"
    path.write_bytes(mbox_entry(TRICKY, "a@example.org", WHEN) + mbox_entry(PLAIN, "b@x", WHEN))
    box = mailbox.mbox(str(path), create=False)
    got = [box.get_bytes(key) for key in box.keys()]
    # The stdlib reads mboxo; mboxrd's quoting is undone by removing one '>'.
    unquoted = [re.sub(rb"(?m)^>(>*From )", rb"\1", raw) for raw in got]
    assert unquoted == [TRICKY, PLAIN]
    assert box.get_message(box.keys()[0]).get_from() == "a@example.org Tue Mar 03 09:00:05 2026"


def test_mboxo_file_with_an_unquoted_body_from_line_splits_only_at_real_separators():
    first = b"Subject: one\n\nhello\n\nFrom here on, unquoted by a broken writer\nbye\n"
    second = b"Subject: two\n\n>From quoted by mboxo\n"
    data = (
        b"From a@example.org Tue Mar  3 10:00:00 2026\n" + first + b"\n"
        b"From b@example.org Wed Mar  4 11:00:00 2026\n" + second
    )
    assert list(read_mbox(io.BytesIO(data))) == [first, second.replace(b">From", b"From")]


def test_mboxrd_file_from_another_writer():
    data = (
        b"From x@y Tue Mar  3 10:00:00 2026\n"
        b"Subject: rd\n\n>From quoted\n>>From was quoted\n\n"
        b"From x@y Tue Mar  3 10:00:01 2026\nSubject: two\n\nend\n"
    )
    assert list(read_mbox(io.BytesIO(data))) == [
        b"Subject: rd\n\nFrom quoted\n>From was quoted\n",
        b"Subject: two\n\nend\n",
    ]


def test_content_length_keeps_an_unquoted_separator_like_line_inside_the_body():
    body = b"before\n\nFrom evil@example.org Tue Mar  3 10:00:00 2026\nafter\n"
    header = b"Subject: cl\nContent-Length: %d\n\n" % len(body)
    data = (
        b"From a@x Tue Mar  3 10:00:00 2026\n" + header + body + b"\n"
        b"From b@x Tue Mar  3 10:00:01 2026\nSubject: next\n\nlast\n"
    )
    assert list(read_mbox(io.BytesIO(data))) == [header + body, b"Subject: next\n\nlast\n"]


def test_a_wrong_content_length_is_ignored():
    data = (
        b"From a@x Tue Mar  3 10:00:00 2026\nSubject: lies\nContent-Length: 3\n\nlong body\n\n"
        b"From b@x Tue Mar  3 10:00:01 2026\nSubject: next\n\nlast\n"
    )
    assert list(read_mbox(io.BytesIO(data))) == [
        b"Subject: lies\nContent-Length: 3\n\nlong body\n",
        b"Subject: next\n\nlast\n",
    ]


def test_text_before_the_first_separator_is_not_mail():
    data = b"garbage\nFrom a@x Tue Mar  3 10:00:00 2026\nSubject: s\n\nb\n"
    assert list(read_mbox(io.BytesIO(data))) == [b"Subject: s\n\nb\n"]


def test_maildir_reads_new_then_cur_and_never_tmp(tmp_path: Path):
    for sub, name, raw in [("cur", "2:2,S", b"two"), ("new", "1", b"one"), ("tmp", "3", b"x")]:
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / name).write_bytes(raw)
    assert [raw for _, raw in read_maildir(tmp_path)] == [b"one", b"two"]


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_a_source_that_does_not_exist_is_named_as_missing(tmp_path, kind):
    from archive.errors import TransferError
    from archive.pipeline.importer import read_source

    missing = tmp_path / "old.mbox"
    with pytest.raises(TransferError, match=f"^import: {re.escape(str(missing))} does not exist$"):
        next(read_source(kind, missing))
