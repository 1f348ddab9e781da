"""Settings from the environment and the mailbox file, loaded once at the entry point.

Secrets never live here: a mailbox names *where* its password is (`password_env` or
`password_secret`), and the password is read only when a session logs in.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from archive.errors import ConfigError
from archive.mime.model import ParseLimits

TlsMode = Literal["implicit", "starttls", "none"]

DEFAULT_PORTS: dict[str, int] = {"implicit": 995, "starttls": 110, "none": 110}
_PARSE_DEFAULTS = ParseLimits()


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
    timeout_seconds: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    retry_delay_seconds: float = Field(default=10.0, ge=0)
    # Parsing limits (archive.mime.ParseLimits): past one, the raw message is still stored
    # and indexed as far as it was parsed, and a defect says which limit was hit.
    parse_max_parts: int = Field(default=_PARSE_DEFAULTS.max_parts, ge=1, le=1_000_000)
    # The stdlib parser recurses per level; well below the interpreter's recursion limit.
    parse_max_depth: int = Field(default=_PARSE_DEFAULTS.max_depth, ge=0, le=200)
    parse_max_header_bytes: int = Field(default=_PARSE_DEFAULTS.max_header_bytes, ge=1)
    parse_max_text_chars: int = Field(default=_PARSE_DEFAULTS.max_text_chars, ge=1)

    def parse_limits(self) -> ParseLimits:
        return ParseLimits(
            max_parts=self.parse_max_parts,
            max_depth=self.parse_max_depth,
            max_header_bytes=self.parse_max_header_bytes,
            max_text_chars=self.parse_max_text_chars,
        )

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or (self.data_dir / "objects").as_uri()


class MailboxConfig(BaseModel):
    """One `[[mailbox]]` table of the mailbox file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: TlsMode = "implicit"
    ca_file: Path | None = None
    username: str = Field(min_length=1)
    password_env: str | None = None
    password_secret: str | None = None
    auth: Literal["user", "plain", "auto"] = "auto"
    delete_after_archive: bool = False
    timeout_seconds: float | None = Field(default=None, gt=0)

    @field_validator("username")
    @classmethod
    def _no_line_breaks(cls, value: str) -> str:
        # RFC 1939 §3: arguments are single tokens; CR or LF would inject a command.
        if "\r" in value or "\n" in value:
            raise ValueError("must not contain CR or LF")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> MailboxConfig:
        if (self.password_env is None) == (self.password_secret is None):
            raise ValueError("set exactly one of password_env or password_secret")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.tls]


class MailboxFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mailbox: tuple[MailboxConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> MailboxFile:
        seen: set[str] = set()
        for box in self.mailbox:
            if box.name in seen:
                raise ValueError(f"duplicate mailbox name {box.name!r}")
            seen.add(box.name)
        return self

    def select(self, names: list[str] | None) -> tuple[MailboxConfig, ...]:
        if not names:
            return self.mailbox
        by_name = {box.name: box for box in self.mailbox}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise ConfigError(f"unknown mailbox name(s): {', '.join(unknown)}")
        return tuple(by_name[name] for name in names)


def load_mailbox_file(path: Path) -> MailboxFile:
    """Parse and validate a mailbox file; every problem becomes one ConfigError naming the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read mailbox file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return MailboxFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        # An invalid table also fails the "at least one mailbox" check; say it once.
        specific = [e for e in errors if len(e["loc"]) > 1] or errors
        problems = "; ".join(_describe(data, err["loc"], err["msg"]) for err in specific)
        raise ConfigError(f"{path}: {problems}") from None


def _describe(data: dict[str, object], loc: tuple[int | str, ...], msg: str) -> str:
    """'[[mailbox]] #2 (name "sales"): bogus: Extra inputs are not permitted'."""
    if len(loc) >= 2 and loc[0] == "mailbox" and isinstance(loc[1], int):
        tables = data.get("mailbox")
        name = None
        if isinstance(tables, list) and loc[1] < len(tables) and isinstance(tables[loc[1]], dict):
            name = tables[loc[1]].get("name")
        where = f"[[mailbox]] #{loc[1] + 1}" + (f" (name {name!r})" if name else "")
        field = ".".join(str(p) for p in loc[2:])
        if msg == "Extra inputs are not permitted":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        return f"{where}: {field + ': ' if field else ''}{msg}"
    return f"{'.'.join(str(p) for p in loc) or '(file)'}: {msg}"


SecretLookup = Callable[[str], str]
"""Resolves a `password_secret` name to its value (Prefect Secret blocks, provided by flows/)."""


def resolve_password(box: MailboxConfig, secret_lookup: SecretLookup | None = None) -> str:
    """Read the mailbox password at login time; the message never includes the value."""
    if box.password_env is not None:
        value = os.environ.get(box.password_env)
        if value is None:
            raise ConfigError(
                f"mailbox {box.name!r}: environment variable {box.password_env} is not set"
            )
    else:
        assert box.password_secret is not None
        if secret_lookup is None:
            raise ConfigError(
                f"mailbox {box.name!r}: password_secret {box.password_secret!r} needs a "
                "Prefect Secret block, which only the Prefect flow can read"
            )
        try:
            value = secret_lookup(box.password_secret)
        except Exception as exc:
            raise ConfigError(
                f"mailbox {box.name!r}: cannot read secret {box.password_secret!r} "
                f"({type(exc).__name__})"
            ) from None
    if "\r" in value or "\n" in value:
        raise ConfigError(f"mailbox {box.name!r}: password contains CR or LF; refusing to send it")
    return value
