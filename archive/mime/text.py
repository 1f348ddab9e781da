"""Decoded text of a message: its body text and the text of its text attachments.

One `TextBudget` per message keeps the costs bounded: `max_text_chars` of body text and
as much again of attachment text, a number of HTML tags (tree building dominates a big
HTML body) and a number of charset guesses (charset_normalizer).
"""

from __future__ import annotations

from archive.mime import charsets
from archive.mime.cleanup import replace_nul, strip_invisible
from archive.mime.defects import Defect, DefectKind
from archive.mime.flowed import unflow_if_flowed
from archive.mime.htmltext import html_to_text, meta_charset
from archive.mime.model import ParseLimits

# Markup opened by "<" (start and end tags, comments) that may be parsed per message:
# about half a second of tree building in the worst case if bs4 (the fallback) builds it
# (~12 µs each, measured on CPython 3.11; lxml is ten times faster), and about ten times
# what a large newsletter (150 KB of HTML) needs.
HTML_TAGS_PER_MESSAGE = 40_000
# charset_normalizer costs 0.2 ms on a few bytes and tens of ms on a large body; after
# this many guesses in one message, undeclared text is read as windows-1252 instead.
CHARSET_GUESSES_PER_MESSAGE = 32
# Machine-readable reports that are text: bounces (RFC 3464), read receipts (RFC 8098),
# abuse reports (RFC 5965). Kept as attachments, and their text is searchable.
REPORTS = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
        "message/global-headers",
    }
)


def _unix_newlines(text: str) -> str:
    """CRLF and lone CR as LF, with one copy per pass: a regex substitution holds every
    line as a piece of its own before joining them (~2x the text of a big part)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class TextBudget:
    """Decodes text parts within the per-message limits; problems go to `defects`."""

    def __init__(self, limits: ParseLimits, defects: list[Defect]) -> None:
        self.limits = limits
        self.defects = defects
        self.texts: list[str] = []
        self.text_chars = 0
        self.full = False
        self.attachment_chars = 0
        self.html_tags_left = HTML_TAGS_PER_MESSAGE
        self.guesses_left = CHARSET_GUESSES_PER_MESSAGE
        # The 8-bit charset the message declares for a text part, tried for a text part
        # that declares none: one mailer wrote both (often an HTML alternative).
        self.declared_elsewhere: str | None = None

    def use_message_charsets(self, declared: tuple[str, ...]) -> None:
        for label in declared:
            if charsets.lookup(charsets.clean_label(label) or "") not in (None, "ascii", "utf-8"):
                self.declared_elsewhere = label
                return

    def decode(
        self,
        path: str,
        data: bytes,
        declared: str | None,
        *,
        html: bool,
        body: bool,
        params: dict[str, str] | None = None,
    ) -> str | None:
        """Text of one part (HTML converted, format=flowed joined, invisible format
        characters dropped), or None when the HTML budget is used up."""
        hint = (meta_charset(data) if html else None) or self.declared_elsewhere
        decoded = charsets.decode(data, declared, fallback_hint=hint, detect=self.guesses_left > 0)
        if decoded.problem:
            self.guesses_left -= 1
            self.defects.append(decoded.problem.at(path))
        text, nuls = replace_nul(decoded.text)
        if nuls:
            self.defects.append(
                Defect(DefectKind.TEXT_REPLACED, path, f"{nuls} NUL characters replaced")
            )
        if not html:
            return strip_invisible(unflow_if_flowed(_unix_newlines(text), params or {}))
        if self.html_tags_left <= 0:
            if body:
                self.defects.append(
                    Defect(DefectKind.HTML_LIMIT, path, "HTML not converted, tag budget used up")
                )
            return None
        converted = html_to_text(text, self.html_tags_left)
        self.html_tags_left -= converted.tags
        if converted.cut and body:
            self.defects.append(
                Defect(DefectKind.HTML_LIMIT, path, "HTML too large, only its start converted")
            )
        return strip_invisible(converted.text)

    def attachment_text(
        self,
        path: str,
        content_type: str,
        data: bytes,
        declared: str | None,
        params: dict[str, str] | None = None,
    ) -> str | None:
        """Searchable text of a text attachment or a report, within the budget."""
        if not (content_type.startswith("text/") or content_type in REPORTS):
            return None
        html = content_type == "text/html"
        text = self.decode(path, data, declared, html=html, body=False, params=params)
        text = text.strip() if text else ""
        if not text:
            return None
        room = self.limits.max_text_chars - self.attachment_chars
        if len(text) > room:
            self.defects.append(
                Defect(
                    DefectKind.TEXT_LIMIT,
                    path,
                    f"attachment text cut, over {self.limits.max_text_chars} characters "
                    "per message",
                )
            )
            text = text[: max(room, 0)]
        self.attachment_chars += len(text)
        return text or None

    def alternative_text(
        self, path: str, data: bytes, declared: str | None, html: bool, params: dict[str, str]
    ) -> str | None:
        """Text of an alternative not taken as the body, within the attachment budget."""
        room = self.limits.max_text_chars - self.attachment_chars
        if room <= 0:
            return None
        text = self.decode(path, data, declared, html=html, body=False, params=params)
        text = text.strip()[:room] if text else ""
        self.attachment_chars += len(text)
        return text or None

    def append_body(self, text: str) -> None:
        if not text:
            return
        separator = 2 if self.texts else 0
        room = self.limits.max_text_chars - self.text_chars - separator
        if len(text) > room:
            self.full = True
            self.defects.append(
                Defect(
                    DefectKind.TEXT_LIMIT,
                    None,
                    f"body text cut at {self.limits.max_text_chars} characters",
                )
            )
            text = text[: max(room, 0)]
            if not text:
                return
        self.texts.append(text)
        self.text_chars += separator + len(text)

    @property
    def body_text(self) -> str:
        return "\n\n".join(self.texts)
