"""archive.pipeline.texts through the archiver over the in-memory POP3 server and index:
which attachments are extracted (once per SHA-256), and what reaches the index."""

from __future__ import annotations

from dataclasses import replace

from archive.extract import Extraction, Extractor, Status
from tests.support.mail import make_message
from tests.support.memory import Rig, box, sha


class ScriptedExtractor(Extractor):
    """No processes: answers from the bytes, and records what it was asked."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.asked: list[str | None] = []

    def extract(self, data: bytes, content_type: str, filename: str | None) -> Extraction:
        self.asked.append(filename)
        if data.startswith(b"LOCKED"):
            return Extraction(Status.ENCRYPTED, detail="needs a password")
        return Extraction(Status.OK, data.decode().lower())


def _rig() -> tuple[Rig, ScriptedExtractor]:
    rig = Rig()
    extractor = ScriptedExtractor()
    rig.archiver = replace(rig.archiver, extractor=extractor)
    return rig, extractor


def test_documents_are_extracted_once_and_text_parts_not_at_all():
    rig, extractor = _rig()
    pdf = ("a.pdf", b"PDF WORDS", "application/pdf")
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
            ("l.pdf", b"LOCKED", "application/pdf"),
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
        "2": (Status.OK, "pdf words"),
        "3": (Status.OK, "pdf words"),
        "4": (Status.OK, ""),  # the parser's text: kept in the attachment
    }
    assert dict(one.fresh) == {sha(pdf[1]): Extraction(Status.OK, "pdf words")}

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
