"""Configuration, built once at the entry point and passed down; nothing is read at import.

- `settings`: process-wide `Settings` from `MAILARCHIVE_*` environment variables.
- `mailboxes`: the mailbox file (`[[mailbox]]` tables) and its validation, placed by line.
- `credentials`: a mailbox's password or token, read only at login.
- `cron`: validation of the schedule expression.

Names are imported from their module on first use (PEP 562): a command that needs only
`Settings` does not build the mailbox file's models (~0.1 s of start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive.config.credentials import (
        PASSWORD_COMMAND_TIMEOUT,
        SecretLookup,
        resolve_password,
    )
    from archive.config.cron import validate_cron
    from archive.config.mailboxes import (
        DEFAULT_PORTS,
        DeletePolicy,
        MailboxConfig,
        MailboxFile,
        check_password_sources,
        load_mailbox_file,
    )
    from archive.config.settings import Settings, default_data_dir, load_settings

_HOMES = {
    "PASSWORD_COMMAND_TIMEOUT": "credentials",
    "SecretLookup": "credentials",
    "resolve_password": "credentials",
    "validate_cron": "cron",
    "DEFAULT_PORTS": "mailboxes",
    "DeletePolicy": "mailboxes",
    "MailboxConfig": "mailboxes",
    "MailboxFile": "mailboxes",
    "check_password_sources": "mailboxes",
    "load_mailbox_file": "mailboxes",
    "Settings": "settings",
    "default_data_dir": "settings",
    "load_settings": "settings",
}

__all__ = [
    "DEFAULT_PORTS",
    "PASSWORD_COMMAND_TIMEOUT",
    "DeletePolicy",
    "MailboxConfig",
    "MailboxFile",
    "SecretLookup",
    "Settings",
    "check_password_sources",
    "default_data_dir",
    "load_mailbox_file",
    "load_settings",
    "resolve_password",
    "validate_cron",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archive.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"archive.config.{home}"), name)
    globals()[name] = value
    return value
