"""A small archive with known contents, loaded through the real parser and index writer.

Search tests and the docs/sql.md cookbook test query it; each message is here for a reason
named in its subject or comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from sqlalchemy import Engine

from archive.index.ledger import IndexWriter
from archive.mime import parse_message


@dataclass(frozen=True, slots=True)
class Mail:
    mailbox: str
    uidl: str
    raw: bytes


def _mail(
    *,
    msg_id: str,
    subject: str,
    body: str,
    sender: str = "Alice Example <alice@example.com>",
    to: str = "legal@example.com",
    cc: str | None = None,
    date: str = "Tue, 03 Mar 2026 10:00:00 +0000",
    extra: str = "",
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    head = (
        f"From: {sender}\r\nTo: {to}\r\n"
        + (f"Cc: {cc}\r\n" if cc else "")
        + f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <{msg_id}>\r\n{extra}"
        + f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
        + "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode("utf-8") + body.replace("\n", "\r\n").encode("utf-8") + b"\r\n"


def _with_attachment(msg_id: str, subject: str, filename: str, data: str, date: str) -> bytes:
    body = (
        "--b1\nContent-Type: text/plain; charset=utf-8\n\nSee the attached file.\n"
        f'--b1\nContent-Type: text/csv; name="{filename}"\n'
        f'Content-Disposition: attachment; filename="{filename}"\n\n{data}\n--b1--'
    )
    return _mail(
        msg_id=msg_id,
        subject=subject,
        body=body,
        sender="Bob Builder <bob@example.org>",
        date=date,
        content_type='multipart/mixed; boundary="b1"',
    )


LONG_BODY = ("lorem ipsum dolor sit amet " * 200_000) + "zebrafinale"  # ~5.4 MB

MAILS = (
    Mail(
        "sales",
        "s1",
        _mail(
            msg_id="budget-1@example.com",
            subject="Quarterly report budget",
            body="The quarterly report is attached below. Viele Grüße, Jürgen",
            sender="Jürgen Müller <juergen@example.de>",
            date="Mon, 02 Mar 2026 09:00:00 +0000",
        ),
    ),
    Mail(
        "sales",
        "s2",
        _mail(
            msg_id="budget-2@example.com",
            subject="Re: Quarterly report budget",
            body="Thanks, the numbers look fine.",
            sender="Alice Example <alice@example.com>",
            to="juergen@example.de",
            cc="carol@example.net",
            date="Tue, 03 Mar 2026 11:00:00 +0000",
            extra="In-Reply-To: <budget-1@example.com>\r\nReferences: <budget-1@example.com>\r\n",
        ),
    ),
    Mail(
        "sales",
        "s3",
        _mail(
            msg_id="budget-3@example.com",
            subject="AW: Re: Quarterly report budget",
            body="Agreed, ship it.",
            sender="Jürgen Müller <juergen@example.de>",
            date="Wed, 04 Mar 2026 08:00:00 +0000",
            extra="In-Reply-To: <budget-2@example.com>\r\n",
        ),
    ),
    Mail(
        "support",
        "u1",
        _mail(
            msg_id="ru-1@example.ru",
            subject="Привет из Москвы",
            body="Добрый день! Встреча в пятницу.",
            sender="Иван <ivan@example.ru>",
            date="Fri, 13 Feb 2026 12:00:00 +0000",
        ),
    ),
    Mail(
        "support",
        "u2",
        _mail(
            msg_id="gr-1@example.gr",
            subject="Καλημέρα",
            body="Η συνάντηση είναι την Τρίτη.",
            sender="Νίκος <nikos@example.gr>",
            date="Sat, 14 Feb 2026 12:00:00 +0000",
        ),
    ),
    Mail(
        "support",
        "u3",
        _mail(
            msg_id="jp-1@example.jp",
            subject="会議のお知らせ",
            body="明日の会議は東京本社で行います。",
            sender="Tanaka <tanaka@example.jp>",
            date="Sun, 15 Feb 2026 12:00:00 +0000",
        ),
    ),
    Mail(
        "support",
        "u4",
        _mail(
            msg_id="fr-1@example.fr",
            subject="Réunion à l'école",
            body="Nous nous réunirons à l'école. ¿Dónde está la biblioteca?",
            sender="Élodie <elodie@example.fr>",
            date="Mon, 16 Mar 2026 12:00:00 +0000",
        ),
    ),
    Mail(
        "sales",
        "s4",
        _with_attachment(
            "invoice-1@example.org",
            "Invoice March",
            "invoice-2026-03.csv",
            "item,amount\nwidgets,1200\nsprockets,300",
            "Thu, 19 Mar 2026 10:00:00 +0000",
        ),
    ),
    Mail(
        "support",
        "u5",
        _with_attachment(
            "invoice-1@example.org",
            "Invoice March",
            "invoice-2026-03.csv",
            "item,amount\nwidgets,1200\nsprockets,300",
            "Thu, 19 Mar 2026 10:00:00 +0000",
        ),
    ),
    Mail(
        "support",
        "u6",
        _with_attachment(
            "invoice-2@example.org",
            "Fwd: Invoice copy",
            "invoice-2026-03.csv",
            "item,amount\nwidgets,1200\nsprockets,300",
            "Fri, 20 Mar 2026 10:00:00 +0000",
        ),
    ),
    Mail(
        "archive",
        "a1",
        _mail(
            msg_id="long-1@example.com",
            subject="A very long log",
            body=LONG_BODY,
            sender="robot@example.com",
            date="Wed, 01 Apr 2026 00:00:00 +0000",
        ),
    ),
    Mail(
        "archive",
        "a2",
        _mail(
            msg_id="noref-1@example.com",
            subject="Re: Planning offsite",
            body="Count me in for the offsite.",
            sender="dave@example.com",
            date="Thu, 02 Apr 2026 00:00:00 +0000",
        ),
    ),
    Mail(
        "archive",
        "a3",
        _mail(
            msg_id="noref-2@example.com",
            subject="RE: planning   offsite",
            body="Me too. Backslash \\ and 'quotes' and 100% sure.",
            sender="erin@example.com",
            date="Fri, 03 Apr 2026 00:00:00 +0000",
        ),
    ),
)


def load(engine: Engine, mails: tuple[Mail, ...] = MAILS) -> None:
    """Index every mail, as the archiver would (the same writer, one transaction each)."""
    writer = IndexWriter(engine)
    for mailbox in dict.fromkeys(mail.mailbox for mail in mails):
        with writer.mailbox(mailbox, "pop.example.com", mailbox) as index:
            for mail in mails:
                if mail.mailbox == mailbox:
                    digest = sha256(mail.raw).hexdigest()
                    index.record(
                        (mail.uidl.encode(), 0), digest, len(mail.raw), parse_message(mail.raw)
                    )
