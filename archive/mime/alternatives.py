"""The text of alternatives that are not shown as the body (RFC 2046 §5.1.4).

`body_text` holds one alternative, the one a reader is shown. The others usually say the
same; when one says something else (the real text beside a "this is an HTML message"
placeholder, a corrected later version), its words must still be found, so its text is
kept in `ParsedMessage.alternative_texts` and indexed as text chunks.
"""

from __future__ import annotations

import re

from archive.mime.defects import Defect, DefectKind
from archive.mime.model import PartText
from archive.mime.params import ParamField
from archive.mime.text import TextBudget

_WORD = re.compile(r"\w+")
# Alternatives read per message: each HTML document costs a parser's set-up however
# small (a message enclosing itself a thousand times has a thousand); real mail has a few.
MAX_ALTERNATIVES = 50


class Alternatives:
    """Collects the text of skipped alternatives within the message's text budget."""

    def __init__(self, text: TextBudget, defects: list[Defect]) -> None:
        self.text = text
        self.defects = defects
        self.found: list[PartText] = []
        self.seen: set[bytes] = set()

    def add(self, path: str, data: bytes, field: ParamField | None, html: bool) -> None:
        """Read one skipped text/plain or text/html part (transfer-decoded `data`, its
        Content-Type `field`)."""
        if data in self.seen:
            return  # the same part again (a message enclosed in itself): read once
        if len(self.seen) >= MAX_ALTERNATIVES:
            self.defects.append(
                Defect(
                    DefectKind.TEXT_LIMIT,
                    None,
                    f"more than {MAX_ALTERNATIVES} alternatives, the rest not read",
                )
            )
            return
        self.seen.add(data)
        declared = field.params.get("charset") if field else None
        params = field.params if field else {}
        text = self.text.alternative_text(path, data, declared, html, params)
        if text:
            self.found.append(PartText(path, text))

    def searchable(self) -> tuple[PartText, ...]:
        """The alternatives with a word that the body text does not have."""
        if not self.found:
            return ()
        body = self.text.body_text
        flat_body = " ".join(body.split())
        # Most alternatives say what the body says, word for word: no words to compare.
        different = [a for a in self.found if " ".join(a.text.split()) != flat_body]
        if not different:
            return ()
        known = set(_WORD.findall(body.casefold()))
        return tuple(
            alternative
            for alternative in different
            if not set(_WORD.findall(alternative.text.casefold())) <= known
        )
