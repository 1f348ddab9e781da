"""Process-wide settings from `MAILARCHIVE_*` environment variables, built once at the entry
point (a CLI command or a flow) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from archive import defaults
from archive.errors import ConfigError

if TYPE_CHECKING:
    from archive.extract import ExtractLimits
    from archive.mime.model import ParseLimits
    from archive.store import ObjectLock


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("mailarchive", appauthor=False))


class Settings(BaseSettings):
    """Process-wide settings, from `MAILARCHIVE_*` environment variables.

    With nothing set, the archive uses an embedded PostgreSQL and a local folder, both under
    `data_dir`.
    """

    model_config = SettingsConfigDict(env_prefix="MAILARCHIVE_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    store_url: str | None = None
    max_parallel_mailboxes: int = Field(default=8, ge=1, le=256)
    timeout_seconds: float = Field(default=defaults.TIMEOUT_SECONDS, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    retry_delay_seconds: float = Field(default=10.0, ge=0)
    # A response larger than this (one message, one listing) fails the mailbox: a server that
    # never ends a response must not fill the disk.
    max_message_bytes: int = Field(default=defaults.MAX_MESSAGE_BYTES, ge=1024)
    # Messages larger than this are archived raw but only their header is parsed and
    # indexed, so memory stays flat whatever the size (the defect is recorded).
    parse_max_bytes: int = Field(default=defaults.PARSE_MAX_BYTES, ge=1024)
    # How long a mailbox run may wait for one of its server's `max_connections` slots.
    host_slot_wait_seconds: float = Field(default=defaults.HOST_SLOT_WAIT_SECONDS, ge=0)
    # Parsing limits (archive.mime.ParseLimits): past one, the raw message is still stored
    # and indexed as far as it was parsed, and a defect says which limit was hit.
    parse_max_parts: int = Field(default=defaults.PARSE_MAX_PARTS, ge=1, le=1_000_000)
    # The stdlib parser recurses per level; well below the interpreter's recursion limit.
    parse_max_depth: int = Field(default=defaults.PARSE_MAX_DEPTH, ge=0, le=200)
    parse_max_header_bytes: int = Field(default=defaults.PARSE_MAX_HEADER_BYTES, ge=1)
    parse_max_text_chars: int = Field(default=defaults.PARSE_MAX_TEXT_CHARS, ge=1)

    # Attachment text (archive.extract): worker processes per process, and the hard limits
    # of one document; past them its status is `failed` and the run goes on.
    extract_workers: int = Field(default=2, ge=1, le=64)
    extract_timeout_seconds: float = Field(default=defaults.EXTRACT_SECONDS, gt=0)
    extract_memory_mb: int = Field(default=defaults.EXTRACT_MEMORY_BYTES >> 20, ge=64)

    def extract_limits(self) -> ExtractLimits:
        from archive.extract import ExtractLimits

        return ExtractLimits(
            seconds=self.extract_timeout_seconds, memory_bytes=self.extract_memory_mb << 20
        )

    # S3 Object Lock for originals (immutable storage): a mode and a retention in days from
    # the write; set both or neither. Use the longest retention any mailbox needs.
    s3_object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] | None = None
    s3_object_lock_days: int | None = Field(default=None, ge=1)

    def object_lock(self) -> ObjectLock | None:
        """The S3 Object Lock originals are written with; None when not configured."""
        if self.s3_object_lock_mode is None and self.s3_object_lock_days is None:
            return None
        if self.s3_object_lock_mode is None or self.s3_object_lock_days is None:
            raise ConfigError(
                "set both MAILARCHIVE_S3_OBJECT_LOCK_MODE and MAILARCHIVE_S3_OBJECT_LOCK_DAYS"
            )
        from archive.store import ObjectLock

        return ObjectLock(self.s3_object_lock_mode, self.s3_object_lock_days)

    def parse_limits(self) -> ParseLimits:
        from archive.mime.model import ParseLimits

        return ParseLimits(
            max_parts=self.parse_max_parts,
            max_depth=self.parse_max_depth,
            max_header_bytes=self.parse_max_header_bytes,
            max_text_chars=self.parse_max_text_chars,
        )

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or (self.data_dir / "objects").as_uri()


def load_settings() -> Settings:
    """`Settings` from the environment, for an entry point. A bad value is a ConfigError that
    names the variable and never repeats the value (a database URL may hold a password)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MAILARCHIVE_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ConfigError(problems) from None
