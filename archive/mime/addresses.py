"""Address lists (RFC 5322 §3.4) from From, Sender, Reply-To, To, Cc and Bcc.

A small linear tokenizer instead of `email.utils.getaddresses`: on CPython 3.11 that one
recurses once per "(" or ":" (RecursionError on a few thousand of them) and takes most of
a second on 256 KiB of "@". Mail in the wild also needs salvage the grammar does not
give: bare "John Smith john@example.org", names in comments, addresses in stray brackets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archive.mime.defects import Defect, DefectKind
from archive.mime.model import Address
from archive.mime.words import decode_words

# Angle addresses are taken whole; '"' and "(" start a quoted string or a comment, which
# are scanned separately: comments nest (RFC 5322 §3.2.2) and an unterminated quote must be
# scanned only once, or a header of '"\\"\\"...' would be read quadratically.
_TOKEN = re.compile(
    r"""(?P<angle><[^<>]*>)
      | (?P<comment>\()
      | (?P<quote>")
      | (?P<special>[,;:])
      | (?P<text>[^"<(,;:]+|<)""",
    re.VERBOSE,
)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Enough for thousands of recipients; a longer list is cut (and a defect recorded).
MAX_TOKENS = 20_000
_PARENS = re.compile(r"\\.|[()]", re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


@dataclass(slots=True)
class _Draft:
    """One mailbox being assembled from tokens (mutable, private to this module)."""

    start: int
    words: list[str] = field(default_factory=list)
    bare: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    angle: str | None = None

    def empty(self) -> bool:
        return self.angle is None and not "".join(self.bare).strip() and not self.comments


def _comment_end(text: str, start: int) -> int:
    """Index just past the comment opening at `start`.

    The end of the text if the comment never closes, or nests past MAX_TOKENS parentheses.
    """
    depth = 0
    for count, match in enumerate(_PARENS.finditer(text, start)):
        if count > MAX_TOKENS:
            break
        char = match.group()  # "(", ")" or a quoted-pair, which is skipped
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)


def _tokens(text: str) -> tuple[list[tuple[str, str, int]], bool]:
    """(kind, text, position) tokens, and whether the list was cut at MAX_TOKENS."""
    out: list[tuple[str, str, int]] = []
    position = 0
    closing_quote_missing = False
    while position < len(text):
        if len(out) >= MAX_TOKENS:
            return out, True
        match = _TOKEN.match(text, position)
        if match is None:  # not reachable: every character starts some alternative
            break
        kind = match.lastgroup or "text"
        if kind == "comment":
            end = _comment_end(text, position)
            out.append(("comment", text[position + 1 : end].removesuffix(")"), position))
            position = end
            continue
        if kind == "quote":
            quoted = None if closing_quote_missing else _QUOTED.match(text, position)
            if quoted is None:
                # No closing quote anywhere after this one: read the '"' as text.
                closing_quote_missing = True
                out.append(("text", '"', position))
                position += 1
                continue
            out.append(("quoted", quoted.group(), position))
            position = quoted.end()
            continue
        out.append((kind, match.group(), position))
        position = match.end()
    return out, False


def _valid(address: str) -> bool:
    at = address.rfind("@")
    return 0 < at < len(address) - 1 and not any(char.isspace() for char in address[at:])


def _finish(draft: _Draft, text: str, end: int, role: str) -> tuple[Address, Defect | None]:
    raw = " ".join(text[draft.start : end].split())
    name = " ".join(" ".join(draft.words).split())
    if draft.angle is not None:
        address = draft.angle
        # RFC 5322 §4.4 obs-route: "<@relay1,@relay2:user@example.org>".
        if address.startswith("@") and ":" in address:
            address = address.rsplit(":", 1)[1]
        address = "".join(address.split())
    else:
        candidates = "".join(draft.bare).split()
        # An addr-spec (RFC 5322 §3.4.1) may be folded around "@"; otherwise salvage
        # "John Smith john@example.org" by taking the one word with an "@" in it.
        joined = "".join(candidates)
        with_at = [word for word in candidates if "@" in word]
        if len(candidates) > 1 and len(with_at) == 1 and _valid(with_at[0]):
            address = with_at[0]
            name = " ".join(word for word in candidates if word is not address)
        else:
            address = joined
            name = ""
        if not name and draft.comments:
            name = " ".join(" ".join(draft.comments).split())
    if not name and draft.comments and draft.angle is not None:
        name = " ".join(" ".join(draft.comments).split())
    address = address.strip("<>").lower()
    name, _ = decode_words(name)
    if not _valid(address):
        return Address(role, raw, ""), Defect(
            DefectKind.BAD_ADDRESS, None, f"{role}: no address in {raw[:80]!r}"
        )
    return Address(role, name.strip(), address), None


def parse_addresses(text: str, role: str) -> tuple[list[Address], list[Defect]]:
    """All mailboxes in one header value (unfolded, unescaped); returns (addresses, problems).

    Group names (RFC 5322 §3.4 "group") are dropped and their members kept.
    """
    addresses: list[Address] = []
    problems: list[Defect] = []
    draft = _Draft(0)

    def finish(end: int) -> None:
        nonlocal draft
        if not draft.empty():
            address, problem = _finish(draft, text, end, role)
            addresses.append(address)
            if problem:
                problems.append(problem)
        draft = _Draft(end + 1)

    tokens, cut = _tokens(text)
    if cut:
        problems.append(
            Defect(
                DefectKind.HEADER_LIMIT, None, f"{role}: address list cut after {MAX_TOKENS} tokens"
            )
        )
    for kind, value, position in tokens:
        if kind == "special":
            if value == ":" and draft.angle is None:
                draft = _Draft(position + 1)  # a group's display name
            elif value == ":":
                draft.bare.append(value)
            else:
                finish(position)
        elif kind == "quoted":
            draft.words.append(_QUOTED_PAIR.sub(r"\1", value[1:-1]))
            draft.bare.append(value)
        elif kind == "angle":
            if draft.angle is None:
                draft.angle = value[1:-1]
            else:
                problems.append(
                    Defect(
                        DefectKind.BAD_ADDRESS,
                        None,
                        f"{role}: second <address> in one mailbox ignored",
                    )
                )
        elif kind == "comment":
            draft.comments.append(value)
        else:
            draft.words.append(value)
            draft.bare.append(value)
    finish(len(text))
    return addresses, problems
