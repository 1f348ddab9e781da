"""Small, valid attachment files for the demo mail (a PNG image, a one-page PDF), and the
few messages the SQL cookbook and the README ask about (`story`)."""

from __future__ import annotations

import random
import struct
import zlib
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parsedate_to_datetime
from typing import Final


def png(rng: random.Random) -> bytes:
    """A tiny RGB PNG of random pixels (2–16 px a side), valid to any image reader."""
    width, height = rng.randrange(2, 17), rng.randrange(2, 17)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pdf(text: str) -> bytes:
    """A one-page PDF with a valid cross-reference table, small enough for a demo."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    return out + trailer % (len(objects) + 1, xref)


# The mail docs/sql.md and the README query, so every example answers on demo data: a
# budget thread Jürgen started with legal@ in March 2026, an invoice CSV (with sprockets)
# delivered to two mailboxes and forwarded, a scan without text, mail from Tokyo, and a
# forward chain nested past the parser's depth limit.
STORY_DAY: Final = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_JUERGEN: Final = "Jürgen Müller <juergen@example.de>"
_INVOICE_CSV: Final = (
    "date,item,quantity,amount,currency\n2026-03-02,sprockets,400,1240.00,EUR\n"
    "2026-03-09,sprockets (express),50,210.00,EUR\n2026-03-16,chain guards,20,96.00,EUR\n"
)


def _mail(
    sender: str, to: str, subject: str, day: int, message_id: str, **headers: str
) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Date"] = format_datetime(STORY_DAY + timedelta(days=day, minutes=7 * day))
    message["Message-ID"] = f"<{message_id}>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def _bytes(message: EmailMessage, boundary: str) -> bytes:
    for n, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"=_{boundary}{n}")  # fixed: the email package draws random ones
    return message.as_bytes()


def _budget(owner: str) -> list[bytes]:
    me = f"{owner.capitalize()} <{owner}@example.com>"
    first = _mail(_JUERGEN, "legal@example.com", "Quarterly report budget", 1,
                  "budget-1@example.com", Cc=me, User_Agent="Thunderbird/128.8.0")  # fmt: skip
    first.set_content(
        "Hallo zusammen,\n\nthe quarterly report needs a budget line for the new sprocket "
        "press. Can legal check the supplier contract first?\n\nViele Grüße\nJürgen\n"
    )
    reply = _mail(me, _JUERGEN, "Re: Quarterly report budget", 2, "budget-2@example.com",
                  Cc="legal@example.com", In_Reply_To="<budget-1@example.com>",
                  References="<budget-1@example.com>",
                  X_Mailer="Microsoft Outlook 16.0")  # fmt: skip
    reply.set_content("Jürgen, the budget line is fine by me; legal has the contract.\n")
    third = _mail(_JUERGEN, me, "AW: Re: Quarterly report budget", 3, "budget-3@example.com",
                  Cc="legal@example.com", In_Reply_To="<budget-2@example.com>",
                  References="<budget-1@example.com> <budget-2@example.com>")  # fmt: skip
    third.set_content("Danke! The quarterly report goes out on Friday.\n")
    return [_bytes(m, "budget") for m in (first, reply, third)]


def _invoice() -> bytes:
    message = _mail("Supplier Billing <billing@supplier.example.net>", "team@example.com",
                    "Invoice March", 4, "invoice-2026-03@supplier.example.net")  # fmt: skip
    message.set_content("The invoice for March is attached, with the delivery note scan.\n")
    message.add_attachment(_INVOICE_CSV, subtype="csv", filename="invoice-2026-03.csv")
    message.add_attachment(pdf(""), maintype="application", subtype="pdf",
                           filename="delivery-note-scan.pdf")  # fmt: skip
    return _bytes(message, "invoice")


def _forward(owner: str, invoice: bytes) -> bytes:
    message = _mail(f"{owner.capitalize()} <{owner}@example.com>", "accounts@example.com",
                    "Fwd: Invoice copy", 5, f"fwd-invoice.{owner}@example.com")  # fmt: skip
    message.set_content("Forwarding the March invoice for the books.\n")
    message.add_attachment(message_from_bytes(invoice, policy=SMTP))
    return _bytes(message, "fwd")


def _tokyo(owner: str) -> bytes:
    message = _mail("山田 太郎 <taro.yamada@example.jp>", f"{owner}@example.com",
                    "東京オフィスの会議", 6, f"tokyo.{owner}@example.jp")  # fmt: skip
    message.set_content("来週、東京オフィスで会議があります。資料を準備してください。\n")
    return _bytes(message, "tokyo")


def _nested(owner: str, depth: int = 40) -> bytes:
    """A forward chain nested deeper than the parser's limit (PARSE_MAX_DEPTH, 32)."""
    head = (
        f"From: {_JUERGEN.split('<')[1].rstrip('>')}\r\nTo: {owner}@example.com\r\n"
        f"Subject: Forward chain\r\nDate: {format_datetime(STORY_DAY + timedelta(days=7))}\r\n"
        f"Message-ID: <chain.{owner}@example.de>\r\nMIME-Version: 1.0\r\n"
    ).encode()
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--n%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nthe bottom of the chain" + closing


def story(owners: list[str]) -> dict[str, list[tuple[datetime, bytes]]]:
    """The cookbook's mail by mailbox: the first gets the budget thread, the invoice and the
    Tokyo mail; the second (or the first) the same invoice, byte for byte, its forward and the
    forward chain. Dated March 2026, after the rest of the demo mail."""
    if not owners:
        return {}
    first, second = owners[0], owners[min(1, len(owners) - 1)]
    invoice = _invoice()
    mail: dict[str, list[bytes]] = {first: [*_budget(first), invoice, _tokyo(first)]}
    mail.setdefault(second, []).extend(
        ([] if second == first else [invoice]) + [_forward(second, invoice), _nested(second)]
    )
    return {
        owner: [(parsedate_to_datetime(message_from_bytes(raw)["Date"]), raw) for raw in raws]
        for owner, raws in mail.items()
    }
