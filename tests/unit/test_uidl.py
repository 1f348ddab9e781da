"""Unique-ids as octets and their escaped text: reversible, and never two ids alike."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archive.pop3.uidl import uidl_octets, uidl_text


def test_octets_outside_printable_ascii_and_the_backslash_are_escaped():
    assert uidl_text(b"inbox-M\xfcller-0001") == "inbox-M\\xfcller-0001"
    assert uidl_text(b"inbox-M\xf6ller-0001") == "inbox-M\\xf6ller-0001"
    assert uidl_text(b"a\\xfc") == "a\\\\xfc"
    assert uidl_text(b"sp ace\x00\x7f") == "sp\\x20ace\\x00\\x7f"
    assert uidl_text(b"00000001a1b2c3d4") == "00000001a1b2c3d4"


@given(st.binary(max_size=80))
def test_the_text_form_is_reversible_and_ascii(octets: bytes):
    text = uidl_text(octets)
    assert text.isascii() and uidl_octets(text) == octets


@given(st.binary(max_size=20), st.binary(max_size=20))
def test_different_ids_never_look_alike(a: bytes, b: bytes):
    assert (uidl_text(a) == uidl_text(b)) == (a == b)


@pytest.mark.parametrize("text", ["ü", "\\x4", "\\xFC", "a\\b", "trailing\\"])
def test_text_that_no_id_makes_is_refused(text: str):
    with pytest.raises(ValueError):
        uidl_octets(text)
