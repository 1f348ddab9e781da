"""archive.pipeline.texts through the archiver over the in-memory POP3 server and index:
which attachments are extracted (once per SHA-256), and what reaches the index."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from archive.extract import Extraction, Extractor, Status
from archive.mime import parse_message
from archive.pipeline.texts import extract_texts
from tests.support.mail import make_message
from tests.support.memory import Rig, box, sha


class ScriptedExtractor(Extractor):
    """No processes: answers from the bytes, and records what it was asked."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.asked: list[str | None] = []

    def extract(self, data: bytes, content_type: str, filename: str | None) -> Extraction:
        self.asked.append(filename)
        if not data.startswith(b"%PDF-"):  # no reader takes it: Extractor's own answer
            return super().extract(data, content_type, filename)
        if data.startswith(b"%PDF-LOCKED"):
            return Extraction(Status.ENCRYPTED, detail="needs a password")
        return Extraction(Status.OK, data.removeprefix(b"%PDF-").decode().lower())


def _rig() -> tuple[Rig, ScriptedExtractor]:
    rig = Rig()
    extractor = ScriptedExtractor()
    rig.archiver = replace(rig.archiver, extractor=extractor)
    return rig, extractor


def test_documents_are_extracted_once_and_text_parts_not_at_all():
    rig, extractor = _rig()
    pdf = ("a.pdf", b"%PDF-WORDS", "application/pdf")
    first = make_message(
        "first",
        attachments=(
            pdf,
            ("copy.pdf", pdf[1], "application/pdf"),
            ("n.txt", b"kiwi", "text/plain"),
        ),
    )
    second = make_message(
        "second",
        attachments=(
            ("again.pdf", pdf[1], "application/pdf"),
            ("l.pdf", b"%PDF-LOCKED", "application/pdf"),
        ),
    )
    rig.maildrop("ann", [first])
    rig.maildrop("bob", [second])
    rig.run(box("ann"))
    rig.run(box("bob"))
    assert extractor.asked == ["a.pdf", "l.pdf"]  # copy.pdf, again.pdf: same bytes as a.pdf

    one = rig.index.messages[sha(first)].texts
    assert one is not None
    assert {path: (r.status, r.text) for path, r in one.by_path.items()} == {
        "2": (Status.OK, "words"),
        "3": (Status.OK, "words"),
        "4": (Status.OK, ""),  # the parser's text: kept in the attachment
    }
    assert dict(one.fresh) == {sha(pdf[1]): Extraction(Status.OK, "words")}

    two = rig.index.messages[sha(second)].texts
    assert two is not None
    assert [(r.status, r.detail) for r in two.by_path.values()] == [
        (Status.OK, None),
        (Status.ENCRYPTED, "needs a password"),
    ]
    assert len(two.fresh) == 1  # only the locked one was new


def test_without_an_extractor_nothing_is_extracted():
    rig = Rig()
    raw = make_message("plain", attachments=(("a.pdf", b"PDF", "application/pdf"),))
    rig.maildrop("ann", [raw])
    rig.run(box("ann"))
    assert rig.index.messages[sha(raw)].texts is None


def test_bytes_no_reader_takes_are_answered_without_the_cache():
    """An image (random bytes) is `unsupported` as the extractor says, without a lookup and
    without a cache row; a document in the same message is looked up, and cached when new."""
    extractor = ScriptedExtractor()
    photo = bytes(range(256)) * 40
    raw = make_message(
        "mixed",
        attachments=(
            ("photo.jpg", photo, "image/jpeg"),
            ("same.jpg", photo, "image/jpeg"),
            ("a.pdf", b"%PDF-NUMBAT", "application/pdf"),
        ),
    )
    parsed = parse_message(raw)
    looked_up: list[set[str]] = []

    def lookup(sha256s: Collection[str]) -> dict[str, Extraction]:
        looked_up.append(set(sha256s))
        return {}

    texts = extract_texts(parsed, extractor, lookup)
    assert looked_up == [{sha(b"%PDF-NUMBAT")}]
    assert dict(texts.fresh) == {sha(b"%PDF-NUMBAT"): Extraction(Status.OK, "numbat")}
    unsupported = Extraction(Status.UNSUPPORTED, detail="no text reader for unknown")
    assert [texts.by_path[a.path] for a in parsed.attachments] == [
        unsupported,
        unsupported,
        Extraction(Status.OK, "numbat"),
    ]
    assert extractor.asked == ["photo.jpg", "a.pdf"]  # same.jpg: answered once per message


def test_a_message_of_readerless_attachments_asks_the_cache_nothing():
    extractor = ScriptedExtractor()
    raw = make_message("photo only", attachments=(("p.jpg", b"\xff\xd8\xff" * 500, "image/jpeg"),))

    def lookup(sha256s: Collection[str]) -> dict[str, Extraction]:
        raise AssertionError(f"looked up {sorted(sha256s)}")

    texts = extract_texts(parse_message(raw), extractor, lookup)
    assert [r.status for r in texts.by_path.values()] == [Status.UNSUPPORTED]
    assert dict(texts.fresh) == {}
