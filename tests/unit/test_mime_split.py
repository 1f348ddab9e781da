"""The buffer-scanning splitter (archive.mime.split) builds the tree the feed parser built.

Every input here is split both ways, by `Splitter` and by `feedtree` (the stdlib feed
parser it replaced, kept as its fallback), and the two trees must be equal entity by
entity: offsets, header fields, payloads, preambles, epilogues, defects. The inputs are
RFC 2046 §5.1.1's edge cases, the hostile set, the shared corpus and generated MIME.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.mime import parse_message
from archive.mime.entity import Entity, Tree
from archive.mime.feedtree import feed_parse_tree
from archive.mime.split import Splitter
from archive.mime.tree import parse_tree
from tests.support.corpus import corpus_params
from tests.unit.test_hostile_mime import ADVERSARIAL, _messages, _mutated

HEAD = b"From: a@example.org\r\nSubject: split\r\n"


def _shape(tree: Tree) -> list[object]:
    """Everything the walk reads from a tree, entity by entity in document order."""
    out: list[object] = [tree.problem, tree.headers_only]
    stack: list[Entity] = [tree.root]
    while stack:
        entity = stack.pop()
        payload = entity.get_payload()
        out.append(
            (
                entity.start,
                entity.body_start,
                entity.end,
                entity.flat,
                entity.get_default_type(),
                entity.get_unixfrom(),
                list(entity.raw_items()),
                [(type(d).__name__, str(d)) for d in entity.defects],
                entity.preamble,
                entity.epilogue,
                payload if isinstance(payload, str) else len(payload or []),
            )
        )
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Entity)]))
    return out


def _same(raw: bytes, max_depth: int = 32, max_parts: int = 1000) -> Tree:
    new = parse_tree(raw, max_depth=max_depth, max_parts=max_parts)
    old = feed_parse_tree(raw, max_depth=max_depth, max_parts=max_parts)
    assert _shape(new) == _shape(old)
    return new


def _splits(raw: bytes) -> bool:
    """Whether the splitter itself took the input (no fallback to the feed parser)."""
    try:
        Splitter(raw, 32, 1000).split()
    except Exception:
        return False
    return True


def _mixed(body: bytes, boundary: bytes = b"b", extra: bytes = b"") -> bytes:
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="'
        + boundary
        + b'"'
        + extra
        + (b"\r\n\r\n" + body)
    )


EDGES: dict[str, bytes] = {
    "well formed": _mixed(b"pre\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n"
                          b"<p>two</p>\r\n--b--\r\nepilogue\r\n"),
    "no preamble": _mixed(b"--b\r\n\r\none\r\n--b--\r\n"),
    "empty preamble line": _mixed(b"\r\n--b\r\n\r\none\r\n--b--"),
    "missing close delimiter": _mixed(b"--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n"),
    "close delimiter only": _mixed(b"preamble\r\n--b--\r\nafter\r\n"),
    "no delimiter at all": _mixed(b"just text\r\n"),
    "boundary in the preamble text": _mixed(b"see --b in text\r\n --b\r\n--b\r\n\r\none\r\n--b--\r\n"),
    "LF line ends": _mixed(b"--b\n\none\n--b\nContent-Type: text/plain\n\ntwo\n--b--\n").replace(
        b"\r\n", b"\n"
    ),
    "CR line ends": _mixed(b"--b\r\rone\r--b--\r").replace(b"\r\n", b"\r"),
    "mixed line ends": _mixed(b"--b\n\r\none\r--b\r\n\ntwo\n--b--"),
    "transport padding": _mixed(b"--b \t\r\n\r\none\r\n--b-- \r\n"),
    "junk after delimiter": _mixed(b"--b\r\n\r\none\r\n--bx\r\n--b junk\r\n--b--x\r\n--b--\r\n"),
    "prefix boundary": _mixed(
        b"--b\r\nContent-Type: multipart/mixed; boundary=bb\r\n\r\n--bb\r\n\r\ninner\r\n"
        b"--bb--\r\n--b--\r\n"
    ),
    "outer is prefix of inner": _mixed(
        b"--bb\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ninner\r\n"
        b"--b--\r\n--bb--\r\n",
        boundary=b"bb",
    ),
    "nesting with the same boundary": _mixed(
        b"--b\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\nplain\r\n"
        b"--b\r\nContent-Type: image/gif\r\n\r\nGIF\r\n--b--\r\nafter close\r\n--b\r\n\r\nlate\r\n"
    ),
    "outer boundary ends an inner part": _mixed(
        b"--b\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\ninner\r\n"
        b"--b\r\n\r\nouter two\r\n--b--\r\n"
    ),
    "repeated delimiters": _mixed(b"--b\r\n--b\r\n--b--\r\n--b\r\n\r\none\r\n--b--\r\n"),
    "delimiter at the very end": _mixed(b"--b\r\n\r\none\r\n--b--"),
    "separator at the very end": _mixed(b"--b\r\n\r\none\r\n--b"),
    "epilogue with delimiters": _mixed(b"--b\r\n\r\none\r\n--b--\r\n--b\r\n\r\nlost\r\n"),
    "encoded multipart": _mixed(b"--b\r\n\r\none\r\n--b--\r\n",
                                extra=b"\r\nContent-Transfer-Encoding: base64"),
    "no boundary parameter": HEAD + b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n",
    "header block without empty line": _mixed(b"--b\r\nContent-Type: text/plain\r\nbody line\r\n"
                                              b"--b--\r\n"),
    "continuation first": _mixed(b"--b\r\n folded\r\nX: y\r\n\r\none\r\n--b--\r\n"),
    "unix from first": b"From someone Mon Jan 1\r\n" + _mixed(b"--b\r\n\r\none\r\n--b--\r\n"),
    "misplaced from": HEAD + b"From x\r\nX: y\r\n\r\nbody\r\n",
    "from line ends the header block": HEAD + b"From x\r\n\r\nbody\r\n",
    "missing header name": HEAD + b": value\r\n\r\nbody\r\n",
    "digest": HEAD + b'Content-Type: multipart/digest; boundary="d"\r\n\r\n--d\r\n\r\n'
    b"Subject: in digest\r\n\r\ntext\r\n--d\r\nContent-Type: text/plain\r\n\r\nplain\r\n--d--\r\n",
    "enclosed message": _mixed(
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
        b'Content-Type: multipart/mixed; boundary="c"\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n\r\n--b--\r\n'
    ),
    "delivery status": _mixed(
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\n\r\n\r\n--b--\r\n"
    ),
    "delivery status with a body line": HEAD
    + b"Content-Type: message/delivery-status\r\n\r\nA: b\r\nnot a header\r\n\r\nC: d\r\n",
    "empty": b"",
    "only a line break": b"\n",
    "8-bit and NUL": _mixed(b"--b\r\n\r\n\xff\xfe\x00 caf\xe9\r\n--b--\r\n"),
    "bare CR before delimiter": _mixed(b"--b\r\n\r\none\r--b--\r\n"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_cases_split_as_the_feed_parser_did(name: str):
    _same(EDGES[name])


def test_the_splitter_takes_ordinary_damage_itself():
    # Only a "From " line at the end of a header block goes to the feed parser.
    handed_back = {name for name, raw in EDGES.items() if not _splits(raw)}
    assert handed_back == {"from line ends the header block"}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_hostile_input_splits_as_the_feed_parser_did(name: str):
    _same(ADVERSARIAL[name])
    _same(ADVERSARIAL[name], max_depth=3, max_parts=7)


def test_part_limit_keeps_the_same_open_parts():
    raw = _mixed(
        b"".join(b"--b\r\nContent-Type: image/gif\r\n\r\nGIF%d\r\n" % i for i in range(20))
    )
    tree = _same(raw, max_parts=5)
    assert tree.problem is not None and "parts after the first 5" in tree.problem.detail


def test_deep_nesting_past_the_recursion_limit_falls_back():
    # Where RecursionError strikes depends on the stack depth of the caller, so the two
    # trees are compared by what they say, not part by part.
    raw = _nested_multiparts(1200)
    with pytest.raises(RecursionError):
        Splitter(raw, 10_000, 100_000).split()
    tree = parse_tree(raw, max_depth=10_000, max_parts=100_000)
    assert tree.problem is not None and "RecursionError" in tree.problem.detail
    assert tree.root.get("subject") == "split" and tree.root.is_multipart()


def _nested_multiparts(depth: int) -> bytes:
    opening = b"".join(
        b"--n%d\r\nContent-Type: multipart/mixed; boundary=n%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    return _mixed(opening + b"--n%d\r\n\r\ndeepest\r\n" % depth, boundary=b"n0")


def test_payload_bytes_are_the_original_bytes():
    raw = _mixed(b"--b\r\nContent-Type: application/octet-stream\r\n\r\n\x00\xff\r\n\r\n--b--\r\n")
    parsed = parse_message(raw)
    assert [a.data for a in parsed.attachments] == [b"\x00\xff\r\n"]


@pytest.mark.usefixtures("corpus")
@pytest.mark.parametrize("path", corpus_params())
def test_corpus_splits_as_the_feed_parser_did(path: Path):
    _same(path.read_bytes())


def test_generated_corpus_splits_as_the_feed_parser_did():
    from benchmarks.corpus import generate

    for _, raw in generate(seed=12, mailboxes=1, messages=60):
        _same(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_messages(), _mutated()))
def test_generated_mime_splits_as_the_feed_parser_did(data: bytes):
    _same(data, max_depth=16, max_parts=200)


_line = st.sampled_from(
    [b"--b", b"--b--", b"--b ", b"--bb", b"--c", b"--c--", b"", b"text", b"X: y",
     b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: multipart/mixed; boundary=c",
     b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status",
     b"Content-Type: multipart/digest; boundary=c", b"From x", b" folded"]
)  # fmt: skip
_eol = st.sampled_from([b"\r\n", b"\n", b"\r"])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_line, _eol), max_size=40))
def test_delimiter_soup_splits_as_the_feed_parser_did(lines: list[tuple[bytes, bytes]]):
    body = b"".join(line + eol for line, eol in lines)
    _same(_mixed(body), max_depth=6, max_parts=60)
    _same(body, max_depth=6, max_parts=60)


def test_boundary_text_inside_lines_costs_no_candidate_checks(monkeypatch: pytest.MonkeyPatch):
    # A body that repeats "--b" mid-line (or pads a delimiter with endless blanks) must not
    # be examined occurrence by occurrence in Python: only line starts are candidates.
    from archive.mime import split

    checked: list[int] = []
    line = split._Delimiter._line
    monkeypatch.setattr(
        split._Delimiter, "_line", lambda self, start: checked.append(start) or line(self, start)
    )
    body = b"x--b" * 50_000
    raw = _mixed(b"--b\r\n\r\n" + body + b"\r\n--b" + b" " * 100_000 + b"\r\n\r\nx\r\n--b--\r\n")
    tree = _same(raw)
    assert len(tree.root.get_payload()) == 2
    assert len(checked) <= 4
