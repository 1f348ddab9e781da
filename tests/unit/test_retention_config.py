"""Retention keys of the mailbox file: validated, each error at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.config import load_mailbox_file
from archive.errors import ConfigError

BOX = '[[mailbox]]\nname = "{name}"\nhost = "h"\nusername = "u"\npassword_env = "X"\n'


def test_retention_keys_are_read(tmp_path: Path):
    path = tmp_path / "boxes.toml"
    path.write_text(
        'retention_years = 7\nretention_from = "archived"\n\n'
        + BOX.format(name="ann")
        + "retention_days = 30\n"
    )
    loaded = load_mailbox_file(path)
    assert (loaded.retention_years, loaded.retention_from) == (7, "archived")
    assert (loaded.mailbox[0].retention_days, loaded.mailbox[0].retention_from) == (30, None)


def test_retention_errors_are_placed(tmp_path: Path):
    path = tmp_path / "boxes.toml"
    path.write_text(
        "retention_days = 10\nretention_years = 1\n\n"
        + BOX.format(name="ann")
        + 'retention_from = "received"\nretention_days = 0\n\n'
        + BOX.format(name="bob")
        + "retention_days = 3\nretention_years = 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_mailbox_file(path)
    assert str(caught.value).splitlines() == [
        f"{path}: line 2: retention_years: set retention_days or retention_years, not both",
        f"{path}: line 9: [[mailbox]] #1 (name 'ann'): retention_from: "
        "Input should be 'sent' or 'archived'",
        f"{path}: line 10: [[mailbox]] #1 (name 'ann'): retention_days: "
        "Input should be greater than or equal to 1",
        f"{path}: line 18: [[mailbox]] #2 (name 'bob'): retention_years: "
        "set retention_days or retention_years, not both",
    ]
