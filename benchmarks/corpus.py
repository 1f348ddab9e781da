"""A seeded, generated corpus shaped like the throughput issue's (issue 12).

    from benchmarks.corpus import generate, describe
    for mailbox, raw in generate(seed=12, mailboxes=40, messages=250): ...

The issue's corpus: 40 mailboxes x 250 messages, about 615 MB, with text and HTML, ~15% of
messages with 1-3 attachments of 20 KB-1.5 MB, and some non-UTF-8 charsets. This generator
makes mail of that shape, deterministically for a seed:

- 40% text/plain only, 45% multipart/alternative (text + HTML), 15% multipart/mixed with 1-3
  attachments (the body itself plain or alternative);
- bodies of 2-60 sentences; one message in eight in a legacy charset (ISO-8859-1,
  windows-1251, KOI8-R, ISO-2022-JP, GB2312, Shift_JIS), encoded quoted-printable, base64
  or 8bit as mail clients send it; the rest UTF-8;
- attachment sizes log-distributed between 20 KB and 1.5 MB (most small, a few large), base64
  encoded in 76-column lines; kinds: incompressible binary (image/jpeg, application/zip,
  application/octet-stream) and text (text/csv, text/plain) whose words are indexable.

Each message is CRLF-terminated bytes, as a POP3 server delivers it. `generate` yields
`(mailbox_name, raw)` in mailbox order; it holds one message at a time, so 615 MB never sits
in memory.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

_WORDS = (
    "invoice shipment quarterly budget review contract renewal schedule meeting agenda "
    "customer support ticket priority deadline project milestone report analysis forecast "
    "revenue expense travel approval request password reset server outage maintenance window "
    "deployment release candidate regression benchmark archive retention compliance audit "
    "legal hold discovery policy vendor payment reminder overdue balance statement account "
    "summary attachment draft final signed copy please find attached regards thanks update "
    "weekly monthly annual planning hiring onboarding training workshop conference keynote"
).split()

# (charset, transfer encoding, sample text in that language, Python codec)
_LEGACY = (
    (
        "iso-8859-1",
        "quoted-printable",
        "Grüße aus München, die Rechnung für März ist fällig.",
        "latin-1",
    ),
    ("windows-1251", "base64", "Привет, отчёт за квартал готов, смотрите вложение.", "cp1251"),
    ("koi8-r", "8bit", "Здравствуйте, совещание перенесено на пятницу.", "koi8_r"),
    ("iso-2022-jp", "7bit", "会議の資料を添付します。よろしくお願いします。", "iso2022_jp"),
    ("gb2312", "base64", "您好，附件是本季度的财务报告，请查收。", "gb2312"),
    ("shift_jis", "base64", "請求書を送付いたします。ご確認ください。", "shift_jis"),
)

_BINARY_KINDS = (
    ("image/jpeg", "photo{n}.jpg"),
    ("application/zip", "archive{n}.zip"),
    ("application/octet-stream", "data{n}.bin"),
)
_TEXT_KINDS = (("text/csv", "ledger{n}.csv"), ("text/plain", "notes{n}.txt"))
_MIN_ATTACHMENT, _MAX_ATTACHMENT = 20_000, 1_500_000


@dataclass(frozen=True)
class Shape:
    """What `generate` made: counts and bytes, for the benchmark's report."""

    messages: int
    bytes: int
    with_attachments: int
    attachments: int
    legacy_charset: int


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(6, 16))
    return " ".join(words).capitalize() + "."


def _paragraphs(rng: random.Random, sentences: int) -> list[str]:
    out: list[str] = []
    while sentences > 0:
        take = min(sentences, rng.randint(2, 5))
        out.append(" ".join(_sentence(rng) for _ in range(take)))
        sentences -= take
    return out


def _wrap(text: str, width: int = 72) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _qp(data: bytes) -> bytes:
    import quopri

    return quopri.encodestring(data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _text_part(rng: random.Random, paragraphs: list[str], legacy: bool) -> tuple[bytes, bytes]:
    """(headers, body) of a text/plain part."""
    if legacy:
        charset, cte, sample, codec = rng.choice(_LEGACY)
        text = "\r\n\r\n".join([sample, *("\r\n".join(_wrap(p)) for p in paragraphs)])
        raw = text.encode(codec)
        body = {"quoted-printable": _qp, "base64": _b64}.get(cte, lambda b: b)(raw)
    else:
        charset, cte = "utf-8", "7bit"
        body = "\r\n\r\n".join("\r\n".join(_wrap(p)) for p in paragraphs).encode()
    head = f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n"
    return head.encode(), body


def _html_part(paragraphs: list[str]) -> tuple[bytes, bytes]:
    html = "".join(f'<p style="margin:0 0 1em">{p}</p>\r\n' for p in paragraphs)
    body = (
        '<html><head><meta charset="utf-8"><style>p{font-family:sans-serif}</style></head>'
        f'\r\n<body>\r\n<div class="content">\r\n{html}</div>\r\n</body></html>\r\n'
    ).encode()
    return (
        b"Content-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        _qp(body),
    )


def _attachment(rng: random.Random, n: int) -> tuple[bytes, bytes]:
    # Log-distributed: u^3.5 keeps most attachments near 20 KB and a few near 1.5 MB.
    size = int(
        _MIN_ATTACHMENT
        * math.exp(math.log(_MAX_ATTACHMENT / _MIN_ATTACHMENT) * rng.random() ** 3.5)
    )
    if rng.random() < 0.7:
        kind, name = rng.choice(_BINARY_KINDS)
        data = rng.randbytes(size)
    else:
        kind, name = rng.choice(_TEXT_KINDS)
        rows, length = [], 0
        while length < size:
            row = ",".join(rng.choices(_WORDS, k=6)) + f",{rng.randint(1, 99999)}\r\n"
            rows.append(row)
            length += len(row)
        data = "".join(rows).encode()
    filename = name.format(n=n)
    head = (
        f'Content-Type: {kind}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
    )
    return head.encode(), _b64(data)


def _multipart(
    subtype: str, boundary: str, parts: list[tuple[bytes, bytes]]
) -> tuple[bytes, bytes]:
    chunks = [b"This is a multi-part message in MIME format.\r\n"]
    for head, body in parts:
        chunks += [f"--{boundary}\r\n".encode(), head, b"\r\n", body]
        if not body.endswith(b"\r\n"):
            chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'
    return content_type.encode(), b"".join(chunks)


def _message(
    rng: random.Random, mailbox: str, index: int, start: datetime, stats: dict[str, int]
) -> bytes:
    sender = (
        f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}@example.{rng.choice(('com', 'org', 'net'))}"
    )
    when = start + timedelta(minutes=index * 37 + rng.randint(0, 30))
    paragraphs = _paragraphs(rng, rng.randint(2, 60))
    legacy = rng.random() < 0.125
    stats["legacy_charset"] += legacy
    shape = rng.random()
    text = _text_part(rng, paragraphs, legacy)
    if shape < 0.40:
        body = text
    else:
        body = _multipart("alternative", f"alt-{mailbox}-{index}", [text, _html_part(paragraphs)])
    if shape >= 0.85:
        count = rng.randint(1, 3)
        stats["with_attachments"] += 1
        stats["attachments"] += count
        parts = [body, *(_attachment(rng, n) for n in range(1, count + 1))]
        body = _multipart("mixed", f"mix-{mailbox}-{index}", parts)
    subject = " ".join(rng.choices(_WORDS, k=rng.randint(3, 8))).capitalize()
    head = (
        f"Return-Path: <{sender}>\r\n"
        f"Received: from mx{rng.randint(1, 9)}.example.com"
        f" (mx.example.com [192.0.2.{rng.randint(1, 254)}])\r\n"
        f"\tby mail.example.net with ESMTPS id {rng.getrandbits(48):012x};"
        f" {format_datetime(when)}\r\n"
        f"From: {sender.split('@')[0].replace('.', ' ').title()} <{sender}>\r\n"
        f"To: {mailbox} <{mailbox}@example.net>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"Message-ID: <{mailbox}.{index}.{rng.getrandbits(32):08x}@example.net>\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode()
    return head + body[0] + b"\r\n" + body[1]


def generate(
    seed: int = 12, mailboxes: int = 40, messages: int = 250, stats: dict[str, int] | None = None
) -> Iterator[tuple[str, bytes]]:
    """Yield `(mailbox_name, raw)` for `mailboxes` x `messages`, the same for the same seed.

    `stats`, when given, is filled with the counts `describe` reports.
    """
    counts = stats if stats is not None else {}
    for key in ("messages", "bytes", "with_attachments", "attachments", "legacy_charset"):
        counts.setdefault(key, 0)
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    for box in range(mailboxes):
        name = f"user{box:03d}"
        rng = random.Random(f"{seed}/{name}")
        for index in range(messages):
            raw = _message(rng, name, index, start, counts)
            counts["messages"] += 1
            counts["bytes"] += len(raw)
            yield name, raw


def describe(stats: dict[str, int]) -> Shape:
    """The counts `generate` filled in, as a `Shape`."""
    return Shape(**{key: stats[key] for key in Shape.__dataclass_fields__})


if __name__ == "__main__":
    import sys

    filled: dict[str, int] = {}
    for _ in generate(stats=filled):
        pass
    shape = describe(filled)
    print(
        shape,
        f"{shape.bytes / 1e6:.0f} MB, {shape.bytes / shape.messages / 1e3:.1f} KB/message",
        file=sys.stderr,
    )
