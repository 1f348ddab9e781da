"""Who runs this process, as the audit trail records it: the OS user, handed to the database
for the transaction (`mailarchive.os_user`), so the rows the SQL functions record (searches)
carry it. No driver imported here: the SQLAlchemy and the libpq paths both use it."""

from __future__ import annotations

import getpass

OS_USER_SQL = "SELECT set_config('mailarchive.os_user', :user, true)"


def os_user() -> str:
    """The operating-system user running this process ('' if it cannot be told)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
