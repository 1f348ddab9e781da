"""One mailbox end to end: fetch → store raw → parse → store parts → index + ledger → DELE.

The invariant this module exists for: a message is deleted from a server only after
1. its raw bytes were written to the object store,
2. read back with a matching SHA-256 (`put_verified`), and
3. the transaction recording it in the index and the ledger has committed.
DELE is sent only after every message of the session went through those steps, and a
session that fails half-way is dropped without QUIT, so the server deletes nothing
(RFC 1939 §6) and Gmail does not mark the messages as downloaded.
"""

from __future__ import annotations

import io
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from archive.config import MailboxConfig, SecretLookup, resolve_password
from archive.errors import (
    ArchiveError,
    IntegrityError,
    MessageError,
    Pop3ServerError,
    is_transient,
)
from archive.index.writer import IndexWriter, LedgerEntry, MailboxIndex
from archive.mime import ParseLimits, parse_message
from archive.pop3.client import Endpoint, Pop3Client, RetrievedMessage
from archive.store import ObjectStore, part_key, put_verified, raw_key, sha256_of_stream

log = logging.getLogger(__name__)


@dataclass
class MailboxResult:
    """What one mailbox run did; the counts add up: new = archived + duplicates + failed."""

    name: str
    listed: int = 0
    new: int = 0
    archived: int = 0
    duplicates: int = 0
    deleted: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    transient: bool = field(default=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("transient")
        data["seconds"] = round(self.seconds, 3)
        return data


class MailboxFailed(ArchiveError):
    """A mailbox run stopped early; carries the partial result and whether to retry."""

    def __init__(self, result: MailboxResult) -> None:
        super().__init__(result.error)
        self.result = result
        self.transient = result.transient


@dataclass(frozen=True)
class Archiver:
    """What every mailbox run shares: the index, the store and the parsing limits."""

    writer: IndexWriter
    store: ObjectStore
    parse_limits: ParseLimits = field(default_factory=ParseLimits)
    default_timeout: float = 60.0
    retr_window: int = 8

    def run(
        self,
        box: MailboxConfig,
        *,
        secret_lookup: SecretLookup | None = None,
        progress: Callable[[MailboxResult], None] | None = None,
    ) -> MailboxResult:
        """Archive one mailbox. Raises MailboxFailed (with the partial counts) on failure."""
        result = MailboxResult(name=box.name)
        started = time.monotonic()
        try:
            self._run(box, result, secret_lookup, progress)
        except Exception as exc:
            result.transient = is_transient(exc)
            result.error = (
                str(exc)
                if isinstance(exc, ArchiveError)
                else (f"mailbox {box.name!r}: unexpected {type(exc).__name__}: {exc}")
            )
            result.failed = result.new - result.archived - result.duplicates
            result.deleted = 0
            result.seconds = time.monotonic() - started
            log.error("mailbox %s failed: %s", box.name, result.error)
            raise MailboxFailed(result) from exc
        result.seconds = time.monotonic() - started
        log.info(
            "mailbox %s: %d listed, %d new, %d archived, %d duplicates, %d deleted",
            box.name,
            result.listed,
            result.new,
            result.archived,
            result.duplicates,
            result.deleted,
        )
        return result

    def _run(
        self,
        box: MailboxConfig,
        result: MailboxResult,
        secret_lookup: SecretLookup | None,
        progress: Callable[[MailboxResult], None] | None,
    ) -> None:
        password = resolve_password(box, secret_lookup)
        endpoint = Endpoint(
            host=box.host,
            port=box.effective_port,
            tls=box.tls,
            ca_file=box.ca_file,
            timeout=box.timeout_seconds or self.default_timeout,
            label=f"mailbox {box.name!r}",
        )
        with self.writer.mailbox(box.name, box.host, box.username) as index:
            self._session(box, endpoint, password, index, result, progress)

    def _session(
        self,
        box: MailboxConfig,
        endpoint: Endpoint,
        password: str,
        index: MailboxIndex,
        result: MailboxResult,
        progress: Callable[[MailboxResult], None] | None,
    ) -> None:
        client = Pop3Client.connect(endpoint)
        try:
            client.login(box.username, password, box.auth)
            index.record_login()
            listing = client.uidl()
            result.listed = len(listing)
            ledger = index.ledger()
            new = [(number, uidl) for number, uidl in listing if uidl not in ledger]
            result.new = len(new)
            uidl_of = dict(new)
            log.info("mailbox %s: %d listed, %d new", box.name, len(listing), len(new))

            archived_numbers: list[int] = []
            for message in client.retrieve([number for number, _ in new], self.retr_window):
                uidl = uidl_of[message.number]
                try:
                    created = self._archive_one(index, uidl, message)
                except Exception as exc:
                    raise MessageError(
                        f"mailbox {box.name!r}: UIDL {uidl} (sha256 {message.sha256}): {exc}",
                        transient=is_transient(exc),
                    ) from exc
                finally:
                    message.close()
                result.bytes += message.size
                if created:
                    result.archived += 1
                else:
                    result.duplicates += 1
                archived_numbers.append(message.number)
                if progress is not None:
                    progress(result)

            if box.delete_after_archive:
                self._delete(client, index, box.name, listing, ledger, archived_numbers, result)
            else:
                try:
                    client.quit()
                except Pop3ServerError as exc:
                    # Nothing was marked for deletion, so a failed QUIT loses nothing.
                    log.warning("%s", exc)
        except BaseException:
            # No QUIT: the server must not enter UPDATE, so nothing marked is deleted.
            client.close()
            raise

    def _archive_one(self, index: MailboxIndex, uidl: str, message: RetrievedMessage) -> bool:
        put_verified(
            self.store, raw_key(message.sha256), message.file, message.sha256, message.size
        )
        if index.find_message(message.sha256) is not None:
            _, created = index.record(uidl, message.sha256, message.size, None)
            return created
        parsed = parse_message(message.read(), self.parse_limits)
        for attachment in parsed.attachments:
            put_verified(
                self.store,
                part_key(attachment.sha256),
                io.BytesIO(attachment.data),
                attachment.sha256,
                attachment.size,
            )
        _, created = index.record(uidl, message.sha256, message.size, parsed)
        return created

    def _delete(
        self,
        client: Pop3Client,
        index: MailboxIndex,
        box_name: str,
        listing: list[tuple[int, str]],
        ledger: dict[str, LedgerEntry],
        archived_numbers: list[int],
        result: MailboxResult,
    ) -> None:
        uidl_by_number = dict(listing)
        # RFC 1939 §7 wants UIDLs unique, but servers give identical messages one UIDL. A
        # shared UIDL cannot tell which copy the ledger holds, so none of them is deleted.
        counts = Counter(uidl for _, uidl in listing)
        ambiguous = {number for number, uidl in listing if counts[uidl] > 1}
        if ambiguous:
            log.warning(
                "mailbox %s: %d messages share a UIDL with another; they stay on the server",
                box_name,
                len(ambiguous),
            )
        # Messages archived by an earlier run whose deletion was never confirmed (a failed
        # QUIT, a crash): their copy is verified again before they are deleted now.
        earlier = [
            number
            for number, uidl in listing
            if uidl in ledger
            and ledger[uidl].deleted_at is None
            and self._copy_is_intact(ledger[uidl].sha256)
        ]
        to_delete = sorted((set(archived_numbers) | set(earlier)) - ambiguous)
        acknowledged = client.delete(to_delete)
        client.quit()
        deleted_uidls = [uidl_by_number[number] for number in acknowledged]
        index.mark_deleted(deleted_uidls)
        result.deleted = len(deleted_uidls)

    def _copy_is_intact(self, sha256: str) -> bool:
        try:
            with self.store.open(raw_key(sha256)) as stream:
                actual, _ = sha256_of_stream(stream)
        except (KeyError, ArchiveError, OSError) as exc:
            log.warning(
                "stored copy %s unreadable (%s); not deleting it from the server",
                sha256,
                type(exc).__name__,
            )
            return False
        if actual != sha256:
            log.error("%s", IntegrityError(f"stored copy {sha256} hashes to {actual}"))
            return False
        return True
