"""Base64 (RFC 2045 §6.8): the strict one-call path gives what the careful path gave.

`decode_base64` first decodes the whole body strictly (pybase64, white space between
lines removed) and hands anything else to `_lenient_base64`, the decoder it used alone
before; on every input the strict path takes, both must give the same bytes and no
defect, and damaged input must still get the careful path's bytes and defects.
"""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from archive.mime.defects import DefectKind
from archive.mime.transfer import _lenient_base64, decode_base64

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_near_base64 = st.lists(
    st.one_of(
        st.sampled_from([*(bytes([c]) for c in _ALPHABET[::7]), b"=", b"==", b"\r\n", b"\n",
                         b" ", b"\t", b"\x0b", b"!", b"-", b"\xff"]),
        st.binary(max_size=12).map(base64.b64encode),
    ),
    max_size=40,
).map(b"".join)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(_near_base64)
def test_strict_path_agrees_with_the_careful_path(data: bytes):
    careful = _lenient_base64(data)
    assert decode_base64(data) == careful


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([b"\r\n", b"\n"]))
def test_mailer_line_wrapped_base64_is_decoded_in_one_call(data: bytes, eol: bytes):
    encoded = base64.encodebytes(data).replace(b"\n", eol)
    assert decode_base64(encoded) == (data, [])


def test_damaged_base64_still_goes_the_careful_way():
    for damaged in (b"QUJD\r\nRE!F\r\nR0hJ\r\n", b"QUJDRA", b"QUJDR", b"QUJD\r\n-- \r\nfooter"):
        decoded, problems = decode_base64(damaged)
        assert (decoded, problems) == _lenient_base64(damaged)
        assert decoded.startswith(b"ABC")
        assert [p.kind for p in problems][:1] == [DefectKind.BAD_BASE64]
