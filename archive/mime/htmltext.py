"""HTML body parts to searchable text, with lxml (libxml2's HTML parser), else beautifulsoup4.

What a reader would see is kept; what a mail client never shows is dropped: <script>,
<style>, <template>, <title> and <head> (unless a sloppy document left <head> open around
<body>, which html.parser keeps as nesting), comments. Block elements, table cells, list
items and <br> become line breaks so paragraphs survive; inline elements (<span>, <b>,
<a>, <font>) separate nothing, as in a browser, so "<span>W</span>illkommen" is one word;
runs of white space inside text collapse to one space.

lxml builds the tree in C, ten times faster than bs4 over `html.parser` (most of the
parser's time on HTML mail went there); bs4 is the fallback for what lxml refuses (an
empty document, text it cannot encode). Both walks are iterative: deeply nested markup
(spam nests <div> tens of thousands deep) must not hit the recursion limit. Time is
bounded by a tag budget the caller passes for the whole message (bs4's tree building
costs 10-20 µs per tag, measured with bs4 4.15 on CPython 3.11), and memory by
MAX_HTML_CHARS per document; what lies beyond is cut, and the caller records a defect.
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from bs4.element import (
    NavigableString,
    PageElement,
    PreformattedString,
    Script,
    Stylesheet,
    Tag,
    TemplateString,
)
from lxml import etree

# Both fire on ordinary mail (a body that is just a URL; XHTML newsletters) and say
# nothing the defects list needs. Filtered by category only, so nothing else is hidden.
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)

# Bounds memory, not time (tags do that): text-heavy HTML is cheap to parse.
MAX_HTML_CHARS = 4_000_000

_SKIP = frozenset({"script", "style", "template", "title", "head"})
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html",
        "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Replaced elements and form controls that a reader sees as a gap between the words around.
_SEPARATING = frozenset({"img", "input", "button", "select", "option", "textarea", "iframe"})
_HIDDEN_STRINGS = (PreformattedString, Script, Stylesheet, TemplateString)
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE
)


def meta_charset(data: bytes) -> str | None:
    """The charset an HTML document declares for itself in its first bytes, if any."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def _after(tag: Tag) -> PageElement | None:
    """The first element after `tag`'s subtree in document order (None at the end)."""
    node: PageElement | None = tag
    while node is not None:
        if node.next_sibling is not None:
            return node.next_sibling
        node = node.parent
    return None


def _is_block(node: PageElement | None) -> bool:
    return isinstance(node, Tag) and node.name in _BLOCK


@dataclass(frozen=True, slots=True)
class HtmlText:
    """The text of one document, how many tags it cost, and whether its end was cut off."""

    text: str
    tags: int
    cut: bool


def _bounded(html: str, max_tags: int) -> tuple[str, int, bool]:
    cut = len(html) > MAX_HTML_CHARS
    if cut:
        html = html[:MAX_HTML_CHARS]
    tags = html.count("<")
    if tags > max_tags:
        position = -1
        for _ in range(max_tags + 1):
            position = html.find("<", position + 1)
        return html[: max(position, 0)], max_tags, True
    return html, tags, cut


def html_to_text(html: str, max_tags: int) -> HtmlText:
    """Readable text of an HTML document, lines separated by "\\n" without blank lines.

    At most `max_tags` tags are parsed; the rest of the document is dropped.
    """
    html, tags, cut = _bounded(html, max_tags)
    try:
        lines = _lxml_lines(html)
    except Exception:  # libxml2 refuses some input (nothing to parse, lone surrogates)
        lines = _bs4_lines(html)
    return HtmlText("\n".join(text for text in lines if text), tags, cut)


_FATAL = etree.ErrorLevels.FATAL
_DOCUMENT_TAGS = re.compile(r"</?(?:body|html)\b[^>]*>", re.IGNORECASE)
# libxml2 closes <head> only at <body> or text, so what a sloppy document writes after its
# <title> may sit in <head>: the hidden elements in it are skipped one by one instead.
_LXML_SKIP = _SKIP - {"head"}
_PARSERS = threading.local()  # an lxml parser is not to be shared between threads


def _parser() -> Any:
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = etree.HTMLParser(
            remove_comments=True, remove_pis=True, huge_tree=True, no_network=True
        )
    return parser


def _lxml_lines(html: str) -> list[str]:
    """The lines of the document's text, walking lxml's tree in document order: an
    element's text, its children, then its tail (the text after it, up to its next
    sibling)."""
    # libxml2 drops whatever follows </body> or </html> (list footers and spam put text
    # there) and ignores a second <html> or <body>; a browser shows the text, and
    # html.parser breaks the line there as at any block, so both become a line break.
    parser = _parser()
    root = etree.fromstring(_DOCUMENT_TAGS.sub("<br>", html), parser)
    if root is None:
        raise ValueError("no document")
    if any(error.level == _FATAL for error in parser.error_log):
        # Nested past libxml2's depth limit (2048), the rest of the document is lost.
        raise ValueError(f"lxml stopped: {parser.error_log.last_error}")
    lines: list[str] = []
    line: list[str] = []  # the strings of the current line, as written (white space kept)

    def end_line() -> None:
        if line:  # an empty line would be dropped by html_to_text anyway
            lines.append(" ".join("".join(line).split()))
            line.clear()

    # lxml's own walk (start and end events, in C) instead of a stack of Python tuples;
    # after_block: the element just ended was a block with no text after it, so the next
    # sibling starts a line (what getprevious() would show, without asking).
    previous = root.getprevious()
    after_block = previous is not None and not previous.tail and previous.tag in _BLOCK
    walk = etree.iterwalk(root, events=("start", "end"))
    for event, element in walk:
        tag = element.tag
        if event == "end":
            tail = element.tail
            if tail:
                if tag in _BLOCK:  # text after a block starts a line
                    end_line()
                line.append(tail)
            after_block = not tail and tag in _BLOCK
            continue
        if after_block:
            end_line()
            after_block = False
        if not isinstance(tag, str) or tag in _LXML_SKIP:
            walk.skip_subtree()  # its end event still comes, with its tail
            continue
        if tag in _BLOCK or tag == "br":
            end_line()
        elif tag in _SEPARATING:
            line.append(" ")
        text = element.text
        if text:
            line.append(text)
    end_line()
    return lines


def _bs4_lines(html: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    body = soup.find("body")
    # A <head> that html.parser left open around <body> must not take the body with it.
    keep = {id(parent) for parent in body.parents} if isinstance(body, Tag) else set()
    lines: list[str] = []
    line: list[str] = []  # the strings of the current line, as written (white space kept)

    def end_line() -> None:
        lines.append(" ".join("".join(line).split()))
        line.clear()

    resume_at: PageElement | None = None
    for node in soup.descendants:
        if resume_at is not None:
            if node is not resume_at:
                continue
            resume_at = None
        if _is_block(node.previous_sibling):
            end_line()
        if isinstance(node, Tag):
            if node.name in _SKIP and id(node) not in keep:
                resume_at = _after(node)
                if resume_at is None:
                    break
                continue
            if node.name in _BLOCK or node.name == "br":
                end_line()
            elif node.name in _SEPARATING:
                line.append(" ")
        elif isinstance(node, NavigableString) and not isinstance(node, _HIDDEN_STRINGS):
            line.append(str(node))
    end_line()
    return lines
