"""Small builders for test messages and mailbox configs."""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from sqlalchemy import Engine, text

from archive.config import MailboxConfig
from archive.pop3.fake.server import FakePop3Server

_ids = itertools.count()


def make_message(
    subject: str = "Hello",
    body: str = "plain body",
    *,
    html: str | None = None,
    sender: str = "Jürgen Müller <juergen@example.org>",
    to: str = "archive@example.com",
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> bytes:
    """A well-formed message with CRLF endings; each call gets a unique Message-ID."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Tue, 03 Mar 2026 10:00:00 +0100"
    message["Message-ID"] = f"<test-{next(_ids)}@example.org>"
    if html is not None and not body:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
    for filename, data, ctype in attachments:
        maintype, subtype = ctype.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def mailbox_config(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    host: str,
    port: int,
    username: str,
    password: str,
    **options: object,
) -> MailboxConfig:
    """A MailboxConfig whose password is in an environment variable, as users configure it."""
    env = f"TEST_PW_{name.upper().replace('-', '_').replace('.', '_')}"
    monkeypatch.setenv(env, password)
    return MailboxConfig.model_validate(
        {
            "name": name,
            "host": host,
            "port": port,
            "username": username,
            "password_env": env,
            **options,
        }
    )


def fake_box(
    monkeypatch: pytest.MonkeyPatch,
    server: FakePop3Server,
    user: str,
    password: str = "secret",
    **options: object,
) -> MailboxConfig:
    """The MailboxConfig of `user` on a (plain TCP) fake server."""
    return mailbox_config(
        monkeypatch, user, server.host, server.port, user, password, tls="none", **options
    )


def scalar(engine: Engine, sql: str, **params: object) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()
