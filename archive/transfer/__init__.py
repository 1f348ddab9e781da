"""Mailbox file formats, bytes only: mbox (mboxrd written; mboxo, mboxrd and Content-Length
read), Maildir read and write. No database, no store: archive.pipeline.export and
archive.pipeline.importer use them."""

from archive.transfer.maildir import maildir_name, read_maildir
from archive.transfer.mbox import from_line, mbox_entry, read_mbox, write_mbox_entry

__all__ = [
    "from_line",
    "maildir_name",
    "mbox_entry",
    "read_maildir",
    "read_mbox",
    "write_mbox_entry",
]
