"""The mailbox file: `[[mailbox]]` tables validated into `MailboxConfig`s, with every error
placed at its file and line.

Secrets never live here: a mailbox names *where* its password is (`password_env`,
`password_secret` or `password_command`), and the password is read only when a session logs in
(`archive.config.credentials`).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from archive.config.cron import validate_cron
from archive.errors import ConfigError
from archive.pop3.types import AuthMethod, TlsMode

DeletePolicy = Literal["keep", "after_archive", "older_than"]
RetentionFrom = Literal["sent", "archived"]

DEFAULT_PORTS: dict[str, int] = {"implicit": 995, "starttls": 110, "none": 110}


def _one_span(value: int | None, info: ValidationInfo) -> int | None:
    """retention_years (validated after retention_days) excludes retention_days."""
    if value is not None and info.data.get("retention_days") is not None:
        raise ValueError("set retention_days or retention_years, not both")
    return value


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
    # A command (no shell) whose standard output is the password, or the OAuth access token
    # for xoauth2/oauthbearer: e.g. ["oauth2l", "fetch", "--scope", "https://mail.google.com/"].
    password_command: tuple[str, ...] | None = Field(default=None, min_length=1)
    # auto: SASL PLAIN when offered, else USER/PASS. APOP and OAuth only when named.
    auth: AuthMethod = "auto"
    # Pipeline commands when the server offers PIPELINING; false forces one at a time.
    pipelining: bool = True
    delete_after_archive: bool = False
    # Delete messages the archive first saw more than N days ago (copy verified first).
    delete_older_than_days: int | None = Field(default=None, ge=1)
    timeout_seconds: float | None = Field(default=None, gt=0)
    # Gmail lists ~250 messages per session: sessions are repeated while new mail appears,
    # each retrieving at most this much, up to max_sessions_per_run.
    max_messages_per_session: int | None = Field(default=None, ge=1)
    max_bytes_per_session: int | None = Field(default=None, ge=1)
    max_sessions_per_run: int = Field(default=50, ge=1)
    # A server advertising LOGIN-DELAY n is not logged into sooner; a run waits up to this
    # long for the delay to pass, otherwise it ends and the next run continues.
    max_login_wait_seconds: float = Field(default=300.0, ge=0)
    # Connections to this host at once, across every process sharing the database.
    max_connections: int = Field(default=4, ge=1, le=1000)
    # Retention (`mailarchive retention`): keep messages N days or years, counted from the
    # date sent or archived; unset: the file's top-level default, else kept forever.
    retention_days: int | None = Field(default=None, ge=1)
    retention_years: int | None = Field(default=None, ge=1)
    retention_from: RetentionFrom | None = None

    @field_validator("retention_years")
    @classmethod
    def _one_retention_span(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _one_span(value, info)

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        # Checked here, not when the first TLS handshake fails after a run has started.
        if value is not None and not value.is_file():
            state = "is not a file" if value.exists() else "does not exist"
            raise ValueError(f"{value} {state}")
        return value

    @field_validator("username")
    @classmethod
    def _no_line_breaks(cls, value: str) -> str:
        # RFC 1939 §3: arguments are single tokens; CR or LF would inject a command.
        if "\r" in value or "\n" in value:
            raise ValueError("must not contain CR or LF")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> MailboxConfig:
        sources = (self.password_env, self.password_secret, self.password_command)
        if sum(source is not None for source in sources) != 1:
            raise ValueError("set exactly one of password_env, password_secret or password_command")
        if self.delete_after_archive and self.delete_older_than_days is not None:
            raise ValueError("set delete_after_archive or delete_older_than_days, not both")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.tls]

    @property
    def delete_policy(self) -> DeletePolicy:
        if self.delete_after_archive:
            return "after_archive"
        return "keep" if self.delete_older_than_days is None else "older_than"


class MailboxFile(BaseModel):
    """The whole mailbox file: optional top-level `schedule`/`timezone`, then `[[mailbox]]`s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str | None = None
    """Cron expression (5 fields, or @hourly/@daily/…) of `mailarchive serve` and workers."""
    timezone: str | None = None
    """IANA time zone the schedule is read in (default UTC)."""
    retention_days: int | None = Field(default=None, ge=1)
    """Default retention of every mailbox that sets none (`mailarchive retention`)."""
    retention_years: int | None = Field(default=None, ge=1)
    retention_from: RetentionFrom = "sent"
    """Count retention from the date sent (the Date header) or the date archived."""
    mailbox: tuple[MailboxConfig, ...] = Field(min_length=1)
    _source: tuple[Path, str] | None = PrivateAttr(default=None)

    def where(self, box: MailboxConfig, key: str) -> str:
        """'mailboxes.toml: line 7: ' for a key of one mailbox, when read from a file."""
        if self._source is None:
            return ""
        path, text = self._source
        index = next(i for i, candidate in enumerate(self.mailbox) if candidate is box)
        return f"{path}: {_Lines(text).where(('mailbox', index, key))}"

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            validate_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("retention_years")
    @classmethod
    def _one_retention_span(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _one_span(value, info)

    @model_validator(mode="after")
    def _unique_names(self) -> MailboxFile:
        duplicate = first_duplicate([box.name for box in self.mailbox])
        if duplicate is not None:
            raise ValueError(f"duplicate mailbox name {self.mailbox[duplicate].name!r}")
        caps: dict[str, int] = {}
        for box in self.mailbox:
            host = box.host.lower()
            if caps.setdefault(host, box.max_connections) != box.max_connections:
                raise ValueError(
                    f"mailbox {box.name!r}: max_connections {box.max_connections} differs from "
                    f"{caps[host]} set for another mailbox on {box.host}"
                )
        return self

    def select(self, names: list[str] | None) -> tuple[MailboxConfig, ...]:
        if not names:
            return self.mailbox
        by_name = {box.name: box for box in self.mailbox}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            where = f"{self._source[0]}: " if self._source is not None else ""
            named = ", ".join(name + _did_you_mean(name, by_name) for name in unknown)
            raise ConfigError(f"{where}unknown mailbox name(s): {named}")
        return tuple(by_name[name] for name in names)


def check_password_sources(
    boxes: tuple[MailboxConfig, ...],
    environ: Mapping[str, str] | None = None,
    placed_in: MailboxFile | None = None,
) -> None:
    """Fail before any run if a `password_env` names a variable this process does not have;
    with `placed_in`, each problem names the file and line of its `password_env`.

    Only whether it is set is checked: the value is never read here. Secret blocks are checked
    by the Prefect flow, which can reach them.
    """
    env = os.environ if environ is None else environ
    missing = [
        (placed_in.where(box, "password_env") if placed_in is not None else "")
        + f"mailbox {box.name!r}: environment variable {box.password_env} is not set"
        for box in boxes
        if box.password_env is not None and box.password_env not in env
    ]
    if missing:
        raise ConfigError("\n".join(missing))


_EMPTY_HINT = "add a [[mailbox]] table per mailbox (every key is in docs/mailboxes.md)"


def load_mailbox_file(path: Path) -> MailboxFile:
    """Parse and validate a mailbox file. Every problem found is reported at once, one per
    line, as `path: line N: what`, sorted by line (problems with no line last)."""
    try:
        source = path.read_text(encoding="utf-8")
        data = tomllib.loads(source)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read mailbox file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if not data:
        raise ConfigError(f"{path}: the file is empty: {_EMPTY_HINT}")
    lines = _Lines(source)
    problems: list[tuple[int | None, str]] = []
    tables = data.get("mailbox")
    if isinstance(tables, dict):
        line = lines.header_line("mailbox")
        raise ConfigError(
            f"{path}: {f'line {line}: ' if line else ''}[mailbox] is one table; write [[mailbox]] "
            "(double brackets) before each mailbox: the file holds a list of them"
        )
    # Checked before validation too, so that the message points at the second table's line.
    if isinstance(tables, list):
        names = [table.get("name") if isinstance(table, dict) else None for table in tables]
        index = first_duplicate(names)
        if index is not None:
            problems.append(
                (
                    lines.line(("mailbox", index)),
                    f"[[mailbox]] #{index + 1}: duplicate mailbox name {names[index]!r}",
                )
            )
    try:
        archive_file = MailboxFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        # An invalid table also fails the "at least one mailbox" check; say it once.
        specific = [
            e for e in errors if len(e["loc"]) > 1 or e["loc"][:1] not in (("mailbox",), ())
        ] or errors
        for err in specific:
            loc = err["loc"]
            if not loc and problems and "duplicate mailbox name" in err["msg"]:
                continue  # placed at the second table's line above
            line = lines.line(loc)
            if line is None and len(loc) == 1:
                line = lines.header_line(str(loc[0]))  # [[mailboxes]]: an unknown table
            message = _describe(data, loc, err["msg"])
            if err["type"] == "extra_forbidden":
                message += _suggestion(loc)
            elif err["type"] == "missing" and loc == ("mailbox",):
                message = f"no [[mailbox]] table: {_EMPTY_HINT}"
            problems.append((line, message))
    if problems:
        problems.sort(key=lambda problem: (problem[0] is None, problem[0] or 0))
        raise ConfigError(
            "\n".join(
                f"{path}: {f'line {line}: ' if line is not None else ''}{message}"
                for line, message in problems
            )
        )
    archive_file._source = (path, source)
    return archive_file


def _suggestion(loc: tuple[int | str, ...]) -> str:
    """' (did you mean 'password_env'?)' for a misspelt key, or why a password is refused."""
    key = str(loc[-1])
    nested = len(loc) >= 3 and loc[0] == "mailbox"
    if nested and key in ("password", "pass", "secret", "token"):
        return (
            ": passwords never go in this file; name where it is with password_env, "
            "password_secret or password_command"
        )
    if nested and key in ("schedule", "timezone"):
        return ": it belongs to the whole file; move it above the first [[mailbox]] header"
    known = MailboxConfig.model_fields if nested else MailboxFile.model_fields
    return _did_you_mean(key, known)


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'sales'?)' if one of `known` is close to `word`, else ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def first_duplicate(names: Sequence[object]) -> int | None:
    """The index of the first name (a string) that an earlier one repeats, or None."""
    seen: set[str] = set()
    for index, name in enumerate(names):
        if isinstance(name, str):
            if name in seen:
                return index
            seen.add(name)
    return None


class _Lines:
    """Finds the line of a key in the TOML source, for error messages (tomllib gives none)."""

    _header = re.compile(r"^\s*\[\[\s*mailbox\s*\]\]")
    _any_header = re.compile(r"^\s*\[")

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()

    def where(self, loc: tuple[int | str, ...]) -> str:
        line = self._find(loc)
        return f"line {line}: " if line is not None else ""

    def line(self, loc: tuple[int | str, ...]) -> int | None:
        return self._find(loc)

    def header_line(self, name: str) -> int | None:
        """The line of a `[name]` or `[[name]]` table header."""
        pattern = re.compile(rf"^\s*\[\[?\s*[\"']?{re.escape(name)}[\"']?\s*\]")
        return next((i + 1 for i, text in enumerate(self.lines) if pattern.match(text)), None)

    def _find(self, loc: tuple[int | str, ...]) -> int | None:
        if len(loc) >= 2 and loc[0] == "mailbox" and isinstance(loc[1], int):
            headers = [i for i, text in enumerate(self.lines) if self._header.match(text)]
            if loc[1] >= len(headers):
                return None
            start = headers[loc[1]]
            end = next(
                (
                    i
                    for i in range(start + 1, len(self.lines))
                    if self._any_header.match(self.lines[i])
                ),
                len(self.lines),
            )
            if len(loc) >= 3:
                key = self._key_line(str(loc[2]), start + 1, end)
                if key is not None:
                    return key
            return start + 1
        if len(loc) == 1 and isinstance(loc[0], str):
            end = next(
                (i for i, text in enumerate(self.lines) if self._any_header.match(text)),
                len(self.lines),
            )
            return self._key_line(loc[0], 0, end)
        return None

    def _key_line(self, key: str, start: int, end: int) -> int | None:
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for i in range(start, end):
            if pattern.match(self.lines[i]):
                return i + 1
        return None


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
    if msg == "Extra inputs are not permitted":
        msg = "unknown key"
    return f"{'.'.join(str(p) for p in loc) or '(file)'}: {msg.removeprefix('Value error, ')}"
