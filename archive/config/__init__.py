"""Configuration, built once at the entry point and passed down; nothing is read at import.

- `settings`: process-wide `Settings` from `MAILARCHIVE_*` environment variables.
- `mailboxes`: the mailbox file (`[[mailbox]]` tables) and its validation, placed by line.
- `credentials`: a mailbox's password or token, read only at login.
- `cron`: validation of the schedule expression.
"""

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
