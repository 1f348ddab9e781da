"""Realistic, deterministic demo mail for ``mailarchive demo``.

`generate_mailboxes` returns raw messages (CRLF line endings, ``email.policy.SMTP``) per
mailbox, in delivery order, the same bytes for the same arguments. The mix: plain text,
HTML-only mail with a ``<style>`` and a ``<script>``, multipart/alternative, attachments
(a small PDF, CSV files, real PNG images), senders and subjects in German, French, Russian,
Greek and Japanese, replies threaded by In-Reply-To/References, Dates spread over 2024.

Every mailbox also receives the same newsletters, byte for byte, so deduplication across
mailboxes is visible (one newsletter per ten messages), and, from twenty messages on, two
slightly malformed messages (a missing final MIME boundary, an unknown charset, raw 8-bit
header bytes) that must still be archived with their defects recorded.

Guaranteed words, for example queries: every mailbox with at least three messages has a
message with ``invoice`` in its subject, one with ``quarterly`` (a quarterly report) and one
with ``meeting``; they are `GUARANTEED_WORDS`. Text inside ``<script>`` elements uses the
word ``trackingpixel``, which a correct HTML-to-text step never indexes. From twenty
messages on, the first two mailboxes also hold the March 2026 mail that docs/sql.md and the
README query (`demo_files.story`), in place of as many generated messages.
"""

from __future__ import annotations

import base64
import html
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Final

from archive.app.demo_files import pdf as _pdf
from archive.app.demo_files import png, story

__all__ = ["GUARANTEED_WORDS", "MAILBOX_NAMES", "generate_mailboxes"]

GUARANTEED_WORDS: Final = ("invoice", "quarterly", "meeting")
MAILBOX_NAMES: Final = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
)  # fmt: skip
DOMAIN: Final = "example.com"
_BASE: Final = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class _Person:
    name: str
    address: str
    locale: str
    utc_offset: timedelta

    @property
    def header(self) -> str:
        return f"{self.name} <{self.address}>"


def _person(name: str, address: str, locale: str, hours: float) -> _Person:
    return _Person(name, address, locale, timedelta(hours=hours))


_PEOPLE: Final = (
    _person("Jürgen Müller", "juergen.mueller@example.de", "de", 1),
    _person("Zoë Lefèvre", "zoe.lefevre@example.fr", "fr", 1),
    _person("Дмитрий Иванов", "dmitry.ivanov@example.ru", "ru", 3),
    _person("Γιώργος Παπαδόπουλος", "giorgos@example.gr", "el", 2),
    _person("山田 太郎", "taro.yamada@example.jp", "ja", 9),
    _person("Sarah O'Connor", "sarah.oconnor@example.ie", "en", 0),
    _person("Priya Raman", "priya.raman@example.in", "en", 5.5),
    _person("Mark Johnson", "mark.johnson@example.org", "en", -5),
)
_BILLING: Final = _person("Supplier Billing", "billing@supplier.example.net", "en", 0)
_NEWSLETTER: Final = _person("Example Weekly", "news@weekly.example.net", "en", 0)

_GREETING: Final = {
    "de": ("Hallo {},", "Viele Grüße"),
    "fr": ("Bonjour {},", "Cordialement"),
    "ru": ("Привет, {}!", "С уважением"),
    "el": ("Γεια σου {},", "Φιλικά"),
    "ja": ("{}さん、こんにちは。", "よろしくお願いします。"),
    "en": ("Hi {},", "Best regards"),
}
_LOCAL_SENTENCES: Final = {
    "de": ("Die Rechnung für März ist bezahlt.", "Grüße aus München, das Wetter ist herrlich."),
    "fr": ("Le rapport trimestriel est presque prêt.", "Merci pour votre réponse rapide."),
    "ru": ("Спасибо за быстрый ответ.", "Отчёт за квартал почти готов."),
    "el": ("Ευχαριστώ για τη γρήγορη απάντηση.", "Τα λέμε στη συνάντηση την Τρίτη."),
    "ja": ("会議の資料を添付します。", "来週の打ち合わせについてご連絡します。"),
    "en": ("Hope you had a good weekend.", "Thanks again for your help last week."),
}
_SENTENCES: Final = (
    "Please find the numbers for last month below.",
    "Can we move the meeting to Thursday afternoon?",
    "The budget for the Apollo project was approved yesterday.",
    "Our supplier confirmed the delivery date for the new laptops.",
    "I have reviewed the contract and left a few comments in the margin.",
    "The server maintenance window is Saturday from 22:00 to 02:00.",
    "Let me know if the deadline still works for your team.",
    "The customer asked for a revised offer with a volume discount.",
    "Attached are the minutes from yesterday's workshop.",
    "Travel is booked: flight on Monday morning, hotel near the station.",
    "We need to renew the software licences before the end of the month.",
    "The new colleague starts on the first; please prepare a laptop and an account.",
    "Thanks for the quick turnaround on the proposal.",
)
_SUBJECTS: Final = (
    "Project Apollo: status update",
    "Budget for next quarter",
    "Contract renewal",
    "Delivery schedule for March",
    "Lunch on Friday?",
    "Server maintenance window",
    "Feedback on the draft proposal",
    "Grüße aus München",
    "Réunion de l'équipe : compte rendu",
    "Привет из Москвы",
    "Καλημέρα από την Αθήνα",
    "会議の議事録",
)


class _Builder:
    """State for one generate_mailboxes call: the random stream and a Message-ID counter."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = itertools.count(1)

    def message_id(self, when: datetime, sender: _Person) -> str:
        domain = sender.address.rpartition("@")[2]
        token = self.rng.getrandbits(32)
        return f"<{when:%Y%m%d%H%M%S}.{next(self.ids):05d}.{token:08x}@{domain}>"

    def date(self, day: float) -> datetime:
        return _BASE + timedelta(days=day, minutes=self.rng.randrange(0, 600))

    def text(self, sender: _Person, owner: str, topic: str, sentences: int = 3) -> str:
        hello, bye = _GREETING[sender.locale]
        lines = [self.rng.choice(_LOCAL_SENTENCES[sender.locale]), topic]
        lines += self.rng.sample(_SENTENCES, sentences)
        if self.rng.random() < 0.1:
            # A body line starting with "." is dot-stuffed on the wire (RFC 1939 §3).
            lines.append(".NET 8 migration notes are in the wiki.")
        first = sender.name.split()[0]
        return (
            f"{hello.format(owner.capitalize())}\n\n" + "\n".join(lines) + f"\n\n{bye}\n{first}\n"
        )

    def new(self, sender: _Person, owner: str, subject: str, when: datetime) -> EmailMessage:
        message = EmailMessage(policy=SMTP)
        message["Received"] = (
            f"from mail.{sender.address.rpartition('@')[2]} by mx.{DOMAIN} with ESMTPS; "
            f"{format_datetime(when.astimezone(UTC))}"
        )
        message["From"] = sender.header
        message["To"] = f"{owner.capitalize()} <{owner}@{DOMAIN}>"
        message["Subject"] = subject
        message["Date"] = format_datetime(when.astimezone(timezone(sender.utc_offset)))
        message["Message-ID"] = self.message_id(when, sender)
        return message

    def body(self, message: EmailMessage, text: str) -> None:
        cte = self.rng.choice((None, "quoted-printable", "base64")) if not text.isascii() else None
        message.set_content(text, cte=cte)

    def serialize(self, message: EmailMessage) -> bytes:
        # The email package draws MIME boundaries from the global random module; fix them.
        for part in message.walk():
            if part.is_multipart():
                part.set_boundary(f"=_{self.rng.getrandbits(64):016x}")
        return message.as_bytes()

    def png(self) -> bytes:
        return png(self.rng)

    def csv(self, what: str) -> str:
        rows = ["date,description,amount,currency"]
        for i in range(self.rng.randrange(3, 12)):
            amount = self.rng.randrange(100, 500_000) / 100
            rows.append(f"2024-{1 + i % 12:02d}-{self.rng.randrange(1, 29):02d},{what} {i + 1},"
                         f"{amount:.2f},EUR")  # fmt: skip
        return "\n".join(rows) + "\n"


def _html(subject: str, paragraphs: list[str], tracking: str) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title>\n"
        "<style>body { font-family: Arial, sans-serif; } .cta { color: #fff; }</style>\n"
        f'<script>var trackingpixel = "{tracking}"; window.trackingpixel = trackingpixel;</script>'
        f"\n</head><body>\n<h1>{html.escape(subject)}</h1>\n{body}\n"
        '<p><a class="cta" href="https://shop.example.net/offers">See the offers</a></p>\n'
        "</body></html>\n"
    )


@dataclass(frozen=True)
class _Sent:
    message_id: str
    subject: str
    references: tuple[str, ...]
    sender: _Person
    text: str


class _MailboxWriter:
    """Builds the messages of one mailbox; remembers them so replies can thread."""

    def __init__(self, builder: _Builder, owner: str) -> None:
        self.b = builder
        self.owner = owner
        self.sent: list[_Sent] = []

    def write(self, kind: str, when: datetime) -> bytes:
        rng = self.b.rng
        parent = rng.choice(self.sent[-20:]) if kind == "reply" and self.sent else None
        sender, subject = rng.choice(_PEOPLE), rng.choice(_SUBJECTS)
        topic = "Here is a short update from my side."
        if kind == "invoice":
            sender = _BILLING
            subject = f"Invoice {when:%Y}-{rng.randrange(1, 9999):04d} for {when:%B}"
            topic = "Please find the invoice attached; payment is due within 30 days."
        elif kind == "quarterly":
            subject = f"Quarterly report Q{(when.month - 1) // 3 + 1} {when:%Y}"
            topic = "Attached is the quarterly report with the revenue figures and a chart."
        elif kind == "meeting":
            subject = f"Meeting on {when + timedelta(days=2):%A}: agenda"
            topic = "Agenda for the meeting: budget, hiring and the Apollo roadmap."
        elif parent is not None:
            # Another participant of the thread answers the earlier message.
            sender = rng.choice([p for p in _PEOPLE if p != parent.sender])
            subject = (
                parent.subject if parent.subject.startswith("Re: ") else f"Re: {parent.subject}"
            )
            topic = "Agreed, see my answer below."
        message = self.b.new(sender, self.owner, subject, when)
        text = self.b.text(sender, self.owner, topic, 1 if parent else 3)
        references: tuple[str, ...] = ()
        if parent is not None:
            references = (*parent.references, parent.message_id)[-10:]
            message["In-Reply-To"] = parent.message_id
            message["References"] = " ".join(references)
            quoted = "".join(f"> {line}\n" for line in parent.text.splitlines())
            text += f"\n{parent.sender.name} wrote:\n{quoted}"
        if kind == "html":
            tracking = f"{rng.getrandbits(64):016x}"
            message.set_content(_html(subject, text.split("\n\n"), tracking), subtype="html")
        elif kind in ("alternative", "quarterly"):
            self.b.body(message, text)
            message.add_alternative(_html(subject, text.split("\n\n"), "0"), subtype="html")
        else:
            self.b.body(message, text)
        if kind in ("attachment", "invoice", "quarterly"):
            self._attach(message, kind, subject)
        message_id = str(message["Message-ID"])
        self.sent.append(_Sent(message_id, subject, references, sender, text))
        return self.b.serialize(message)

    def _attach(self, message: EmailMessage, kind: str, subject: str) -> None:
        rng = self.b.rng
        if kind == "invoice":
            number = subject.split()[1]
            pdf = _pdf(f"Invoice {number} - total EUR {rng.randrange(100, 9999)}.00")
            name = rng.choice((f"invoice-{number}.pdf", f"Rechnung März {number}.pdf"))
            message.add_attachment(pdf, maintype="application", subtype="pdf", filename=name)
            return
        if kind == "quarterly":
            message.add_attachment(self.b.csv("revenue"), subtype="csv", filename="quarterly.csv")
            message.add_attachment(
                self.b.png(), maintype="image", subtype="png", filename="chart.png"
            )
            return
        for _ in range(rng.randrange(1, 4)):
            choice = rng.randrange(3)
            if choice == 0:
                data = _pdf(f"{subject} - draft {rng.randrange(1, 9)}")
                message.add_attachment(
                    data, maintype="application", subtype="pdf", filename="draft.pdf"
                )
            elif choice == 1:
                name = rng.choice(("expenses.csv", "Übersicht.csv", "données.csv"))
                message.add_attachment(self.b.csv("item"), subtype="csv", filename=name)
            else:
                name = rng.choice(("photo.png", "写真.png", "screenshot.png"))
                message.add_attachment(self.b.png(), maintype="image", subtype="png", filename=name)


def _malformed(builder: _Builder, owner: str, variant: int, when: datetime) -> bytes:
    """Raw bytes the email package would never produce, as real mailboxes contain."""
    sender = _BILLING if variant == 0 else builder.rng.choice(_PEOPLE)
    head = (
        f"From: {sender.address}\r\nTo: {owner}@{DOMAIN}\r\n"
        f"Date: {format_datetime(when)}\r\nMessage-ID: {builder.message_id(when, sender)}\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode("ascii")
    if variant == 0:
        blob = base64.encodebytes(builder.rng.randbytes(300)).replace(b"\n", b"\r\n")
        return head + (
            b"Subject: Your statement (attachment may be truncated)\r\n"
            b'Content-Type: multipart/mixed; boundary="=_b0undary"\r\n\r\n'
            b"This is a multi-part message in MIME format.\r\n--=_b0undary\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"Please find your monthly statement attached.\r\n--=_b0undary\r\n"
            b'Content-Type: application/octet-stream; name="statement.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + blob
        )  # No closing "--=_b0undary--": the final boundary is missing.
    if variant == 1:
        return head + (
            b"Subject: Lieferung und Rechnung\r\n"
            b'Content-Type: text/plain; charset="x-klingon-8bit"\r\n'
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + "Die Lieferung kommt am Montag. Grüße aus Köln!\r\n".encode("latin-1")
        )
    return head + (
        b"Subject: " + "Grüße zum Geburtstag".encode("latin-1") + b"\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"The subject header carries raw Latin-1 bytes, not an RFC 2047 encoded word.\r\n"
    )


def _newsletters(builder: _Builder, count: int) -> list[tuple[datetime, bytes]]:
    letters = []
    for i in range(count):
        when = _BASE + timedelta(days=i * 365 / max(count, 1), hours=1)
        message = EmailMessage(policy=SMTP)
        message["From"] = _NEWSLETTER.header
        message["To"] = "subscribers@weekly.example.net"
        message["Subject"] = f"Example Weekly #{i + 1}: news, offers and events"
        message["Date"] = format_datetime(when)
        message["Message-ID"] = builder.message_id(when, _NEWSLETTER)
        message["List-Unsubscribe"] = "<https://weekly.example.net/unsubscribe>"
        paragraphs = [f"Welcome to issue {i + 1} of the Example Weekly newsletter."]
        paragraphs += builder.rng.sample(_SENTENCES, 3)
        message.set_content("\n\n".join(paragraphs) + "\n")
        message.add_alternative(_html(str(message["Subject"]), paragraphs, "news"), subtype="html")
        letters.append((when, builder.serialize(message)))
    return letters


def _mailbox_name(k: int) -> str:
    """alice, bob, … judy, then alice2, bob2, …"""
    name = MAILBOX_NAMES[k % len(MAILBOX_NAMES)]
    return name if k < len(MAILBOX_NAMES) else f"{name}{k // len(MAILBOX_NAMES) + 1}"


def generate_mailboxes(
    n_mailboxes: int = 3, messages_per_mailbox: int = 100, seed: int = 1
) -> dict[str, list[bytes]]:
    """``n_mailboxes`` mailboxes ("alice", "bob", …) of ``messages_per_mailbox`` raw messages."""
    if n_mailboxes < 0 or messages_per_mailbox < 0:
        raise ValueError("n_mailboxes and messages_per_mailbox must be >= 0")
    builder = _Builder(seed)
    total = messages_per_mailbox
    shared = _newsletters(builder, total // 10)
    fixed = ["invoice", "quarterly", "meeting"][: total - len(shared)]
    n_malformed = 2 if total >= 20 else 0
    owners = [_mailbox_name(k) for k in range(n_mailboxes)]
    stories = story(owners) if total >= 20 else {}
    weights = {"plain": 30, "alternative": 20, "html": 10, "attachment": 15, "reply": 25}
    mailboxes: dict[str, list[bytes]] = {}
    for k, owner in enumerate(owners):
        told = stories.get(owner, [])
        n_random = total - len(shared) - len(fixed) - n_malformed - len(told)
        kinds = fixed + builder.rng.choices(list(weights), list(weights.values()), k=n_random)
        kinds += ["malformed"] * n_malformed
        builder.rng.shuffle(kinds)
        days = sorted(builder.rng.uniform(0, 365) for _ in kinds)
        writer = _MailboxWriter(builder, owner)
        malformed = itertools.count(k)
        dated = list(shared) + told
        for kind, day in zip(kinds, days, strict=True):
            when = builder.date(day)
            if kind == "malformed":
                dated.append((when, _malformed(builder, owner, next(malformed) % 3, when)))
            else:
                dated.append((when, writer.write(kind, when)))
        # Delivery order; sort() is stable, so equal dates keep a deterministic order.
        dated.sort(key=lambda item: item[0])
        mailboxes[owner] = [raw for _, raw in dated]
    return mailboxes
