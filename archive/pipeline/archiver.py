"""One mailbox end to end: fetch → store raw → parse → store parts → index + ledger → DELE.

The invariant this module exists for: a message is deleted from a server only after
1. its raw bytes were written to the object store,
2. read back with a matching SHA-256 (`put_verified`), and
3. the transaction recording it in the index and the ledger has committed.
DELE is sent only after every message of the session went through those steps, and a
session that fails half-way is dropped without QUIT, so the server deletes nothing
(RFC 1939 §6), Gmail does not mark the messages as downloaded, and a server announcing
`EXPIRE 0` (retrieval may delete) expires nothing that is not archived.

A run is one or more sessions: Gmail lists ~250 messages per session, so sessions repeat
while each one brings new mail (see `archive.pipeline.sessions.wants_another_session`),
within the mailbox's per-session and per-run limits and the server's LOGIN-DELAY.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field

from archive.config import MailboxConfig, SecretLookup, resolve_password
from archive.errors import ArchiveError, MessageError, Pop3ServerError, is_transient
from archive.index.ledger import IndexWriter, LedgerEntry, LedgerKey, MailboxIndex, Recorded
from archive.mime import ParsedMessage, ParseLimits
from archive.pipeline.deletion import Candidate, plan_deletions
from archive.pipeline.ingest import DEFAULT_MAX_BYTES, parse_original, store_attachments
from archive.pipeline.sessions import Plan, SessionOutcome, cap_session, wants_another_session
from archive.pop3.client import Endpoint, Pop3Client, RetrievedMessage
from archive.store import ObjectStore, put_verified, raw_key

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
    sessions: int = 0
    # Ledger rows whose UIDL changed on the server (a UIDL reset): relabelled, not stored again.
    relabelled: int = 0
    note: str | None = None
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


@dataclass
class _Run:
    """One mailbox run's state, shared by its sessions."""

    box: MailboxConfig
    endpoint: Endpoint
    password: str = field(repr=False)
    index: MailboxIndex
    result: MailboxResult
    progress: Callable[[MailboxResult], None] | None
    seen: set[LedgerKey] = field(default_factory=set)


@dataclass(frozen=True)
class Archiver:
    """What every mailbox run shares: the index, the store and the limits."""

    writer: IndexWriter
    store: ObjectStore
    parse_limits: ParseLimits = field(default_factory=ParseLimits)
    default_timeout: float = 60.0
    retr_window: int = 8
    max_message_bytes: int = 1 << 30
    parse_max_bytes: int = DEFAULT_MAX_BYTES
    host_slot_wait_seconds: float = 3600.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

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
            result.seconds = time.monotonic() - started
            log.error("mailbox %s failed: %s", box.name, result.error)
            raise MailboxFailed(result) from exc
        result.seconds = time.monotonic() - started
        if result.relabelled:
            reset = (
                f"UIDL reset: {result.relabelled} archived messages are listed under new UIDLs; "
                "ledger relabelled, nothing stored twice"
            )
            log.warning("mailbox %s: %s", box.name, reset)
            result.note = f"{reset}; {result.note}" if result.note else reset
        log.info(
            "mailbox %s: %d listed, %d new, %d archived, %d duplicates, %d deleted%s",
            box.name,
            result.listed,
            result.new,
            result.archived,
            result.duplicates,
            result.deleted,
            f" ({result.note})" if result.note else "",
        )
        return result

    def _run(
        self,
        box: MailboxConfig,
        result: MailboxResult,
        secret_lookup: SecretLookup | None,
        progress: Callable[[MailboxResult], None] | None,
    ) -> None:
        endpoint = Endpoint(
            host=box.host,
            port=box.effective_port,
            tls=box.tls,
            ca_file=box.ca_file,
            timeout=box.timeout_seconds or self.default_timeout,
            label=f"mailbox {box.name!r}",
            pipelining=box.pipelining,
            max_response_bytes=self.max_message_bytes,
        )
        with self.writer.mailbox(box.name, box.host, box.username) as index:
            with index.lock(box.name) as held:
                if not held:
                    result.note = "skipped: another session is archiving this mailbox"
                    return
                password = resolve_password(box, secret_lookup)
                self._sessions(_Run(box, endpoint, password, index, result, progress))

    def _sessions(self, run: _Run) -> None:
        box, index, result = run.box, run.index, run.result
        slot = ExitStack()
        holding = probing = False
        with slot:
            for number in range(box.max_sessions_per_run):
                state = index.login_state()
                wait = state.seconds_until_login()
                if wait > box.max_login_wait_seconds:
                    result.note = f"server LOGIN-DELAY: next login allowed in {wait:.0f}s" + (
                        "; more mail may be waiting" if number else "; run deferred"
                    )
                    return
                if wait > 0:
                    slot.close()  # others may use the host while we sleep
                    holding = False
                    log.info("mailbox %s: waiting %.0fs for LOGIN-DELAY", box.name, wait)
                    self.sleep(wait)
                if not holding:
                    slot.enter_context(
                        index.host_slot(box.host, box.max_connections, self.host_slot_wait_seconds)
                    )
                    holding = True
                session = self._session(run)
                result.sessions += 1
                if probing:
                    # The session after an all-new listing tells whether this server shows
                    # only part of the mailbox per session (Gmail); remembered per mailbox.
                    index.set_listing_limited(session.new > 0)
                more, probing = wants_another_session(session, state.listing_limited)
                if not more:
                    return
        result.note = f"stopped after {box.max_sessions_per_run} sessions; more mail may remain"

    def _session(self, run: _Run) -> SessionOutcome:
        box, index, result = run.box, run.index, run.result
        session = SessionOutcome()
        client = Pop3Client.connect(run.endpoint)
        try:
            client.login(box.username, run.password, box.auth)
            index.record_login(client.login_delay)
            if client.expires_on_retrieval:
                log.info("mailbox %s: server expires retrieved mail (EXPIRE 0)", box.name)
            listing = client.listing()
            ledger = index.ledger()
            plan = Plan.make(listing, ledger)
            session.listed = len(listing)
            run.seen.update(plan.key_of.values())
            result.listed = len(run.seen)
            self._reconcile(index, box.name, plan, ledger)
            wanted = cap_session(
                plan.wanted, box.max_messages_per_session, box.max_bytes_per_session
            )
            session.capped = len(wanted) < len(plan.wanted)
            session.new = len(wanted)
            result.new += len(wanted)
            stale = plan.stale(ledger)
            archived: dict[int, int] = {}
            for message in client.retrieve([item.number for item in wanted], self.retr_window):
                self._take(run, plan, ledger, stale, message, archived, session)
                if run.progress is not None:
                    run.progress(result)
            if box.delete_policy == "keep":
                _quit_keeping(client)
            else:
                self._delete(client, box, index, plan, ledger, archived, result)
        except BaseException:
            # No QUIT: the server must not enter UPDATE, so nothing marked is deleted.
            client.close()
            raise
        return session

    def _take(
        self,
        run: _Run,
        plan: Plan,
        ledger: dict[LedgerKey, LedgerEntry],
        stale: set[int],
        message: RetrievedMessage,
        archived: dict[int, int],
        session: SessionOutcome,
    ) -> None:
        result = run.result
        uidl, occurrence = plan.key_of[message.number]
        try:
            if plan.shared[uidl] > 1:
                known = plan.known_copy(ledger, uidl, message.sha256)
                if known is not None:
                    # Read again only because its UIDL is shared: archived before. Verify the
                    # stored copy all the same, as a delete may follow.
                    put_verified(
                        self.store,
                        raw_key(message.sha256),
                        message.file,
                        message.sha256,
                        message.size,
                    )
                    archived[message.number] = known
                    session.new -= 1
                    result.new -= 1
                    return
                occurrence = plan.next_occurrence(ledger, uidl)
            recorded = self._archive_one(run.index, (uidl, occurrence), message, stale)
        except Exception as exc:
            raise MessageError(
                f"mailbox {run.box.name!r}: UIDL {uidl} (sha256 {message.sha256}): {exc}",
                transient=is_transient(exc),
            ) from exc
        finally:
            message.close()
        archived[message.number] = recorded.delivery_id
        result.bytes += message.size
        result.relabelled += recorded.relabelled
        if recorded.created:
            result.archived += 1
        else:
            result.duplicates += 1

    def _archive_one(
        self, index: MailboxIndex, key: LedgerKey, message: RetrievedMessage, stale: set[int]
    ) -> Recorded:
        put_verified(
            self.store, raw_key(message.sha256), message.file, message.sha256, message.size
        )
        parsed: ParsedMessage | None = None
        if index.find_message(message.sha256) is None:
            parsed = parse_original(
                message.file, message.size, self.parse_limits, self.parse_max_bytes
            )
            store_attachments(self.store, parsed)
        return index.record(key, message.sha256, message.size, parsed, stale)

    def _reconcile(
        self,
        index: MailboxIndex,
        name: str,
        plan: Plan,
        ledger: dict[LedgerKey, LedgerEntry],
    ) -> None:
        """DELEs acknowledged but never confirmed by QUIT: gone now means deleted then."""
        listed_uidls = set(plan.shared)
        gone = [
            entry.id
            for entry in ledger.values()
            if entry.delete_requested_at is not None
            and entry.deleted_at is None
            and entry.uidl not in listed_uidls
        ]
        if gone:
            log.info("mailbox %s: %d earlier deletions confirmed by their absence", name, len(gone))
            index.mark_deleted(gone)

    def _delete(
        self,
        client: Pop3Client,
        box: MailboxConfig,
        index: MailboxIndex,
        plan: Plan,
        ledger: dict[LedgerKey, LedgerEntry],
        archived: dict[int, int],
        result: MailboxResult,
    ) -> None:
        earlier = [
            Candidate(number, entry)
            for number, key in plan.key_of.items()
            if (entry := ledger.get(key)) is not None and plan.shared[key[0]] == 1
        ]
        targets = plan_deletions(box, self.store, archived, earlier, plan.ambiguous(ledger))
        acknowledged = client.delete(sorted(targets))
        index.mark_delete_requested(targets[n] for n in acknowledged)
        client.quit()
        index.mark_deleted(targets[n] for n in acknowledged)
        result.deleted += len(acknowledged)


def _quit_keeping(client: Pop3Client) -> None:
    try:
        client.quit()
    except Pop3ServerError as exc:
        # Nothing was marked for deletion, so a failed QUIT loses nothing.
        log.warning("%s", exc)
