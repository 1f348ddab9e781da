"""Defaults defined once: `archive.config.Settings` offers them as settings, and the lower
layers (pop3/, pipeline/), which never import config, take them as parameter defaults."""

from __future__ import annotations

TIMEOUT_SECONDS = 60.0
"""How long one POP3 socket read or write may block."""

MAX_MESSAGE_BYTES = 1 << 30
"""A larger response (one message, one listing) fails the mailbox: a server that never ends
a response must not fill the disk."""

PARSE_MAX_BYTES = 64 << 20
"""Messages larger than this are archived whole but indexed by header only."""

HOST_SLOT_WAIT_SECONDS = 3600.0
"""How long a mailbox run may wait for one of its server's `max_connections` slots."""

PARSE_MAX_PARTS = 1000
PARSE_MAX_DEPTH = 32
PARSE_MAX_HEADER_BYTES = 256 * 1024
PARSE_MAX_TEXT_CHARS = 10_000_000
"""`archive.mime.ParseLimits`' defaults, offered by `Settings` without importing the parser
(bs4, charset-normalizer) at start-up; a unit test keeps the two equal."""

EXTRACT_SECONDS = 30.0
EXTRACT_MEMORY_BYTES = 1 << 30
"""Hard limits of one attachment's text extraction (`archive.extract.ExtractLimits`), past
which its status is `failed` and the run goes on."""
