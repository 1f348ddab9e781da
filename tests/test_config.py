from __future__ import annotations

from pathlib import Path

import pytest

from archive.config import MailboxConfig, load_mailbox_file, resolve_password
from archive.errors import ConfigError

GOOD = """
[[mailbox]]
name = "sales"
host = "pop.example.com"
username = "sales@example.com"
password_env = "SALES_PW"

[[mailbox]]
name = "legal"
host = "pop.example.com"
port = 110
tls = "starttls"
username = "legal"
password_secret = "legal-pop3"
delete_after_archive = true
"""


def test_good_file(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    boxes = load_mailbox_file(path)
    sales, legal = boxes.mailbox
    assert (sales.effective_port, sales.tls, sales.delete_after_archive) == (995, "implicit", False)
    assert (legal.effective_port, legal.tls, legal.delete_after_archive) == (110, "starttls", True)
    assert boxes.select(["legal"]) == (legal,)
    with pytest.raises(ConfigError, match="nosuch"):
        boxes.select(["nosuch"])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            GOOD + "\n[[mailbox]]\nname='sales'\nhost='h'\nusername='u'\npassword_env='X'\n",
            "duplicate mailbox name 'sales'",
        ),
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npassword_env='X'\npassword='plain'\n",
            "password",
        ),
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\n",
            "exactly one of password_env, password_secret or password_command",
        ),
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npassword_env='X'\ntls='sometimes'\n",
            "tls",
        ),
        ("[[mailbox]\n", "invalid TOML"),
        ("[[mailbox]]\nname='b'\nhost='h'\nusername='u'\npassword_env='X'\nbogus=1\n", "[[mailbox]] #1 (name 'b'): bogus: unknown key"),
    ],
)
def test_bad_files_are_rejected_with_reason(tmp_path: Path, text: str, reason: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failure:
        load_mailbox_file(path)
    assert reason in str(failure.value) and str(path) in str(failure.value)


def test_password_resolution_never_leaks(monkeypatch):
    box = MailboxConfig(name="x", host="h", username="u", password_env="X_PW")
    with pytest.raises(ConfigError, match="X_PW is not set"):
        resolve_password(box)
    monkeypatch.setenv("X_PW", "hunter2\r\nDELE 1")
    with pytest.raises(ConfigError) as failure:
        resolve_password(box)
    assert "hunter2" not in str(failure.value)
    monkeypatch.setenv("X_PW", "hunter2")
    assert resolve_password(box) == "hunter2"
    secret_box = MailboxConfig(name="y", host="h", username="u", password_secret="s")
    assert resolve_password(secret_box, lambda name: f"value-of-{name}") == "value-of-s"
