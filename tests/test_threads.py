"""thread_id: References, In-Reply-To, else the normalised subject."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from archive.index.threads import normalise_subject, thread_key
from archive.mime import parse_message


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Budget", "budget"),
        ("Re: Budget", "budget"),
        ("RE: re:  Budget ", "budget"),
        ("AW: Re[2]: Fwd: Budget", "budget"),
        ("SV: VS: WG: Budget", "budget"),
        ("[team] Re: [team] Budget", "budget"),
        ("回复：预算", "预算"),
        ("Re:", None),
        ("", None),
        (None, None),
        ("Reply all", "reply all"),
    ],
)
def test_normalise_subject(subject, expected):
    assert normalise_subject(subject) == expected


def _key(headers: str):
    return thread_key(parse_message(headers.encode() + b"\r\n\r\nbody\r\n"))


def test_thread_key_prefers_the_first_reference():
    key = _key(
        "Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\nSubject: Re: s"
    )
    assert (key.thread_id, key.parent) == ("a@x", None)


def test_thread_key_uses_the_parent_without_references():
    key = _key("Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nSubject: Re: s")
    assert (key.thread_id, key.parent) == ("b@x", "b@x")


def test_a_new_message_starts_its_own_thread():
    key = _key("Message-ID: <a@x>\r\nSubject: Budget")
    assert (key.thread_id, key.subject, key.by_subject_only) == ("a@x", "budget", False)


def test_a_reply_without_headers_is_threaded_by_subject():
    key = _key("Message-ID: <z@x>\r\nSubject: Re: Budget")
    assert (key.thread_id, key.by_subject_only) == ("subject:budget", True)


def test_thread_ids_in_the_archive(loaded_archive: Engine):
    with loaded_archive.connect() as conn:
        rows = dict(conn.execute(text("SELECT uidl, thread_id FROM archive.messages")).all())
    # s3 has only In-Reply-To (s2), and joins s2's thread through the parent's row.
    assert rows["s1"] == rows["s2"] == rows["s3"] == "budget-1@example.com"
    # a2 and a3 have no References and differ in case and spacing of "Re:".
    assert rows["a2"] == rows["a3"] == "subject:planning offsite"
    assert rows["s4"] == rows["u5"] == "invoice-1@example.org"
    assert rows["u6"] == "subject:invoice copy"
    assert rows["u1"] == "ru-1@example.ru"
