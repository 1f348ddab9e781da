"""The demo mail generator: deterministic, realistic, parseable, with shared copies."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from archive.app.demo_data import GUARANTEED_WORDS, generate_mailboxes


def _parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    """Subject and every decodable text part, lower-cased."""
    texts = [str(message.get("Subject", ""))]
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            try:
                texts.append(part.get_content())
            except (LookupError, ValueError):
                continue
    return "\n".join(texts).lower()


@pytest.fixture(scope="module")
def mailboxes() -> dict[str, list[bytes]]:
    return generate_mailboxes(3, 100, seed=1)


def test_deterministic_for_a_seed(mailboxes: dict[str, list[bytes]]):
    assert generate_mailboxes(3, 100, seed=1) == mailboxes
    assert generate_mailboxes(3, 100, seed=2) != mailboxes


def test_names_and_counts(mailboxes: dict[str, list[bytes]]):
    assert list(mailboxes) == ["alice", "bob", "carol"]
    assert [len(box) for box in mailboxes.values()] == [100, 100, 100]
    assert [len(box) for box in generate_mailboxes(2, 7).values()] == [7, 7]
    assert generate_mailboxes(0, 10) == {}
    assert list(generate_mailboxes(12, 1))[-2:] == ["alice2", "bob2"]


def test_newsletters_are_byte_identical_in_every_mailbox(mailboxes: dict[str, list[bytes]]):
    copies = Counter(raw for box in mailboxes.values() for raw in set(box))
    shared = [raw for raw, count in copies.items() if count == len(mailboxes)]
    assert len(shared) == 10
    assert all(b"Example Weekly" in raw for raw in shared)
    # Only the newsletters are shared, and the cookbook's invoice (alice and bob); everything
    # else is unique to its mailbox.
    assert sum(count for count in copies.values()) == 300
    assert len(copies) == 300 - 2 * 10 - 1


def test_every_message_parses_with_a_unique_message_id(mailboxes: dict[str, list[bytes]]):
    ids: dict[str, bytes] = {}
    for box in mailboxes.values():
        for raw in box:
            assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
            message_id = _parse(raw)["Message-ID"]
            assert message_id and message_id.startswith("<") and message_id.endswith(">")
            assert ids.setdefault(str(message_id), raw) == raw
    assert len(ids) == 279


def test_guaranteed_words_are_in_every_mailbox(mailboxes: dict[str, list[bytes]]):
    assert GUARANTEED_WORDS == ("invoice", "quarterly", "meeting")
    for size in (3, 100):
        for box in generate_mailboxes(4, size, seed=9).values():
            subjects = [str(_parse(raw)["Subject"]).lower() for raw in box]
            for word in GUARANTEED_WORDS:
                assert any(word in subject for subject in subjects), (word, size)
    texts = [_text(_parse(raw)) for raw in mailboxes["alice"]]
    assert sum("invoice" in text for text in texts) >= 1


def test_realistic_mix(mailboxes: dict[str, list[bytes]]):
    messages = [_parse(raw) for raw in mailboxes["bob"]]
    types = Counter(m.get_content_type() for m in messages)
    assert {"text/plain", "text/html", "multipart/alternative", "multipart/mixed"} <= set(types)
    html_only = [m for m in messages if m.get_content_type() == "text/html"]
    assert all("<style>" in m.get_content() and "<script>" in m.get_content() for m in html_only)
    attachments = [p for m in messages for p in m.iter_attachments()]
    kinds = {p.get_content_type() for p in attachments}
    assert {"application/pdf", "text/csv", "image/png"} <= kinds
    png = next(p for p in attachments if p.get_content_type() == "image/png")
    assert png.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = next(p for p in attachments if p.get_content_type() == "application/pdf")
    assert pdf.get_content().startswith(b"%PDF-1.4") and pdf.get_content().endswith(b"%%EOF\n")
    names = {p.get_filename() for m in messages for p in m.walk() if p.get_filename()}
    assert any(not name.isascii() for name in names)


def test_non_ascii_names_and_subjects(mailboxes: dict[str, list[bytes]]):
    all_messages = [_parse(raw) for box in mailboxes.values() for raw in box]
    subjects = {str(m["Subject"]) for m in all_messages}
    senders = {str(m["From"]) for m in all_messages}
    assert {"Grüße aus München", "Привет из Москвы", "会議の議事録"} <= subjects
    assert "Jürgen Müller <juergen.mueller@example.de>" in senders
    assert any("Γιώργος" in sender for sender in senders)


def test_replies_thread_to_earlier_messages_in_the_mailbox(mailboxes: dict[str, list[bytes]]):
    for box in mailboxes.values():
        messages = [_parse(raw) for raw in box]
        earlier: set[str] = set()
        replies = 0
        for message in messages:
            parent = message["In-Reply-To"]
            if parent:
                replies += 1
                assert str(parent) in earlier
                assert str(message["References"]).split()[-1] == str(parent)
                assert str(message["Subject"]).startswith(("Re: ", "AW: Re: "))
            earlier.add(str(message["Message-ID"]))
        assert replies >= 5


def test_dates_spread_over_a_year_in_delivery_order(mailboxes: dict[str, list[bytes]]):
    for box in mailboxes.values():
        dates = [_parse(raw)["Date"].datetime for raw in box]
        assert dates == sorted(dates)
        assert (dates[-1] - dates[0]).days > 300
        assert dates[0].year == 2024


def test_malformed_messages_are_present(mailboxes: dict[str, list[bytes]]):
    raws = [raw for box in mailboxes.values() for raw in box]
    missing_boundary = [r for r in raws if b'boundary="=_b0undary"' in r]
    assert missing_boundary and all(b"--=_b0undary--" not in r for r in missing_boundary)
    assert any(defect for r in missing_boundary for defect in _parse(r).defects)
    assert any(b'charset="x-klingon-8bit"' in r for r in raws)
    assert any(b"Subject: Gr\xfc\xdfe" in r for r in raws)
    assert all(sum(b"=_b0undary" in r or b"klingon" in r or b"Gr\xfc\xdfe" in r for r in box) == 2
               for box in mailboxes.values())  # fmt: skip


def test_some_body_lines_start_with_a_dot(mailboxes: dict[str, list[bytes]]):
    # Exercised by dot-stuffing in the POP3 server and unstuffing in the client.
    assert any(b"\r\n.NET" in raw for box in mailboxes.values() for raw in box)


def test_the_cookbook_mail_is_in_the_first_two_mailboxes(mailboxes: dict[str, list[bytes]]):
    def ids(owner: str) -> set[str]:
        return {str(_parse(raw)["Message-ID"]) for raw in mailboxes[owner]}

    thread = {"<budget-1@example.com>", "<budget-2@example.com>", "<budget-3@example.com>"}
    invoice = "<invoice-2026-03@supplier.example.net>"
    assert thread | {invoice} <= ids("alice")
    assert invoice in ids("bob") and "<fwd-invoice.bob@example.com>" in ids("bob")
    assert not (thread | {invoice}) & ids("carol")
    assert generate_mailboxes(1, 19) == generate_mailboxes(1, 19, seed=1)
    assert not any(b"budget-1@example.com" in raw for raw in generate_mailboxes(1, 19)["alice"])
    solo = generate_mailboxes(1, 20)["alice"]
    assert len(solo) == 20 and sum(b"invoice-2026-03@supplier" in raw for raw in solo) >= 1
