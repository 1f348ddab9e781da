"""thread_id: References, In-Reply-To, else the normalised subject."""

from __future__ import annotations

import pytest

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
