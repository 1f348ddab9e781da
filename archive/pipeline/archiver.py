"""One mailbox end to end: fetch → store raw → parse → store parts → index + ledger → DELE.

The invariant this module exists for: a message is deleted from a server only with this
session's evidence that it is a verified archived original. Either
1. its raw bytes were written to the object store,
2. read back with a matching SHA-256 (`put_verified`), and
3. the transaction recording it in the index and the ledger has committed; or, for a copy
archived by an earlier run, `archive.pipeline.evidence` proved it (same unique-id octets,
LIST size, `TOP n 0` header block equal to the verified stored original's), else it is
retrieved and must hash to its ledger row. A stored original found missing or damaged on
the way is stored again from the server's copy (repaired) or reported (unrepaired).
DELE is sent only after every message of the session went through those steps, and a
session that fails half-way is dropped without QUIT, so the server deletes nothing
(RFC 1939 §6), Gmail does not mark the messages as downloaded, and a server announcing
`EXPIRE 0` (retrieval may delete) expires nothing that is not archived.

A run is one or more sessions: Gmail lists ~250 messages per session, so sessions repeat
while each one brings new mail (see `archive.pipeline.sessions.wants_another_session`),
within the mailbox's per-session and per-run limits and the server's LOGIN-DELAY.

A run stops early when its `stop` token is set (the entry point sets it on SIGTERM or
SIGINT): no session starts after it, no RETR is asked for past the message in hand (the
RETRs already pipelined are abandoned), no DELE goes out, and the session is dropped without
QUIT, which deletes nothing (RFC 1939 §6). What was committed stays committed and counted;
the result is marked `interrupted`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime

from archive.config import MailboxConfig, SecretLookup, resolve_password
from archive.defaults import (
    HOST_SLOT_WAIT_SECONDS,
    MAX_MESSAGE_BYTES,
    PARSE_MAX_BYTES,
    TIMEOUT_SECONDS,
)
from archive.errors import (
    MessageError,
    is_transient,
)
from archive.extract import AttachmentTexts, Extractor
from archive.index.ledger import Recorded
from archive.mime import ParsedMessage, ParseLimits
from archive.pipeline import outcome
from archive.pipeline.batch import GroupCommit
from archive.pipeline.deletion import allowed_by_policy, plan_deletions
from archive.pipeline.evidence import Evidence, gather_evidence
from archive.pipeline.ingest import parse_original, store_attachments
from archive.pipeline.ledger import Known, Ledger, Place, SessionLedger
from archive.pipeline.mailbox_run import MailboxRun, quit_keeping, reconcile, settle_repair
from archive.pipeline.ports import Index, MailboxLedgerIndex, Runs
from archive.pipeline.records import keep_record
from archive.pipeline.result import MailboxFailed, MailboxResult, Tally
from archive.pipeline.sessions import SessionOutcome, cap_session, wants_another_session
from archive.pipeline.texts import extract_texts
from archive.pop3.client import Pop3Client
from archive.pop3.source import Connector, Endpoint, MailSource, RetrievedMessage
from archive.pop3.uidl import uidl_text
from archive.store import ObjectStore, put_verified, raw_key
from archive.store.group import GroupSync

__all__ = ["Archiver", "MailboxFailed", "MailboxResult"]

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Archiver:
    """What every mailbox run shares: the index, the store, the mail source and the limits.

    `connect` opens one POP3 session (`archive.pop3.source.Connector`); tests pass an
    in-memory one (`archive.pop3.fake.memory.MemoryPop3.connect`) or wrap the real one.
    """

    writer: Index
    store: ObjectStore
    parse_limits: ParseLimits = field(default_factory=ParseLimits)
    default_timeout: float = TIMEOUT_SECONDS
    retr_window: int = 8
    max_message_bytes: int = MAX_MESSAGE_BYTES
    parse_max_bytes: int = PARSE_MAX_BYTES
    host_slot_wait_seconds: float = HOST_SLOT_WAIT_SECONDS
    # How LOGIN-DELAY is waited out; None: on the stop token, so a stop ends the wait at once.
    sleep: Callable[[float], None] | None = field(default=None, repr=False)
    # The time `delete_older_than_days` counts back from; the index stamps archived_at.
    clock: Callable[[], datetime] = field(default=_utc_now, repr=False)
    connect: Connector = field(default=Pop3Client.connect, repr=False)
    # Set by the entry point on SIGTERM/SIGINT; the default is never set. One Archiver is
    # shared per process: an entry point gives a run its token with `dataclasses.replace`.
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    # Reads the text inside attachments (archive.extract); None: not read now, `reindex`
    # does it later.
    extractor: Extractor | None = field(default=None, repr=False)
    # Group commit: messages per transaction, and the longest a batch stays open.
    batch_messages: int = 100
    batch_seconds: float = 0.5
    # Where each run's record goes as it ends (`mailarchive status`); None: nowhere.
    runs: Runs | None = field(default=None, repr=False)

    def run(
        self,
        box: MailboxConfig,
        *,
        secret_lookup: SecretLookup | None = None,
        progress: Callable[[MailboxResult], None] | None = None,
    ) -> MailboxResult:
        """Archive one mailbox. Raises MailboxFailed (with the partial counts) on failure.
        Either way the run's record is written (`runs`) before this returns."""
        started_at = self.clock()
        try:
            result = self._outcome(box, secret_lookup, progress)
        except MailboxFailed as failed:
            keep_record(self.runs, box, started_at, failed.result, failed.summary)
            raise
        keep_record(self.runs, box, started_at, result, None)
        return result

    def _outcome(
        self,
        box: MailboxConfig,
        secret_lookup: SecretLookup | None,
        progress: Callable[[MailboxResult], None] | None,
    ) -> MailboxResult:
        started = time.monotonic()
        tally = Tally()
        note: str | None = None
        try:
            note = self._run(box, tally, secret_lookup, progress)
        except Exception as exc:
            raise outcome.failed(box, tally, started, note, exc) from exc
        return outcome.finished(box, tally, started, note)

    def endpoint(self, box: MailboxConfig) -> Endpoint:
        """Where `box` lives, with this archiver's timeout and response limit."""
        return Endpoint(
            host=box.host,
            port=box.effective_port,
            tls=box.tls,
            ca_file=box.ca_file,
            timeout=box.timeout_seconds or self.default_timeout,
            label=f"mailbox {box.name!r}",
            pipelining=box.pipelining,
            max_response_bytes=self.max_message_bytes,
        )

    def _run(
        self,
        box: MailboxConfig,
        tally: Tally,
        secret_lookup: SecretLookup | None,
        progress: Callable[[MailboxResult], None] | None,
    ) -> str | None:
        """The run under the mailbox lock; returns the result's note."""
        endpoint = self.endpoint(box)
        with self.writer.mailbox(box.name, box.host, box.username) as index:
            with index.lock(box.name) as held:
                if not held:
                    tally.stopped = "skipped"
                    return "skipped: another session is archiving this mailbox"
                password = resolve_password(box, secret_lookup)
                # Loaded once: this run holds the mailbox lock, so only it changes the rows.
                ledger = Ledger(index.ledger())
                run = MailboxRun(box, endpoint, password, index, ledger, progress, tally)
                return self._sessions(run)

    def _sessions(self, run: MailboxRun) -> str | None:
        box, index = run.box, run.index
        slot = ExitStack()
        holding = probing = False
        with slot:
            for number in range(box.max_sessions_per_run):
                if self.stop.is_set():
                    return self._interrupted(run, "no session started after it")
                state = index.login_state()
                wait = state.seconds_until_login()
                if wait > box.max_login_wait_seconds:
                    run.tally.stopped = "partial" if number else "deferred"
                    return f"server LOGIN-DELAY: next login allowed in {wait:.0f}s" + (
                        "; more mail may be waiting" if number else "; run deferred"
                    )
                if wait > 0:
                    slot.close()  # others may use the host while we sleep
                    holding = False
                    log.info("mailbox %s: waiting %.0fs for LOGIN-DELAY", box.name, wait)
                    if self.sleep is None:
                        self.stop.wait(wait)
                    else:
                        self.sleep(wait)
                    if self.stop.is_set():
                        return self._interrupted(run, "no session started after it")
                if not holding:
                    slot.enter_context(
                        index.host_slot(box.host, box.max_connections, self.host_slot_wait_seconds)
                    )
                    holding = True
                session = self._session(run)
                if run.tally.interrupted:
                    return self._interrupted(run, "session dropped without QUIT or DELE")
                if probing:
                    # The session after an all-new listing tells whether this server shows
                    # only part of the mailbox per session (Gmail); remembered per mailbox.
                    index.set_listing_limited(session.new > 0)
                more, probing = wants_another_session(session, state.listing_limited)
                if not more:
                    return None
        run.tally.stopped = "partial"
        return f"stopped after {box.max_sessions_per_run} sessions; more mail may remain"

    def _interrupted(self, run: MailboxRun, what: str) -> str:
        run.tally.interrupted = True
        # Partial when a session ran; skipped when the signal came before the first one.
        run.tally.stopped = "partial" if run.tally.sessions else "skipped"
        log.warning("mailbox %s: interrupted; %s", run.box.name, what)
        return f"interrupted: {what}"

    def _session(self, run: MailboxRun) -> SessionOutcome:
        box, index, tally = run.box, run.index, run.tally
        source = self.connect(run.endpoint)
        try:
            source.login(box.username, run.password, box.auth)
            index.record_login(source.login_delay)
            if source.expires_on_retrieval:
                log.info("mailbox %s: server expires retrieved mail (EXPIRE 0)", box.name)
            listing = source.listing()
            session = run.ledger.session(listing)
            tally.seen |= session.seen
            reconcile(run, session)
            evidence = self._evidence(run, source, session)
            # New mail first, then earlier copies nothing proved to be the archived original
            # (RETR and hash), within the session's caps; what is left waits, undeleted.
            new = session.new()
            refetch = [item for item in session.listing if item.number in evidence.fetch]
            wanted = cap_session(
                new + refetch, box.max_messages_per_session, box.max_bytes_per_session
            )
            tally.wanted += len(wanted)
            known_before = tally.known
            archived: dict[int, int] = {}
            withheld: set[int] = set()
            numbers = sorted(item.number for item in wanted)
            # Committed in batches (archive.pipeline.batch), all of them before any DELE.
            # Objects' names are synced once per batch, just before its commit.
            store = GroupSync(self.store)
            with GroupCommit(
                index, self.batch_messages, self.batch_seconds, before_commit=store.sync
            ) as group:
                for message in source.retrieve(numbers, self.retr_window):
                    archived[message.number] = self._take(run, session, message, group, store)
                    if not settle_repair(run, evidence, message.number, archived[message.number]):
                        withheld.add(message.number)
                    group.tick()
                    run.report()
                    if self.stop.is_set():
                        break  # ask for no further RETR; the pipelined ones are abandoned
            if self.stop.is_set():
                # Before any DELE: dropped without QUIT, the server deletes nothing.
                tally.interrupted = True
                source.close()
            elif box.delete_policy == "keep":
                quit_keeping(run, source)
            else:
                self._delete(run, source, session, archived, evidence, withheld)
        except BaseException:
            # No QUIT: the server must not enter UPDATE, so nothing marked is deleted.
            source.close()
            raise
        tally.sessions += 1
        return SessionOutcome(
            listed=len(listing),
            new=len(wanted) - (tally.known - known_before),
            capped=len(wanted) < len(new) + len(refetch),
        )

    def _take(
        self,
        run: MailboxRun,
        session: SessionLedger,
        message: RetrievedMessage,
        group: GroupCommit,
        store: ObjectStore,
    ) -> int:
        """Archive one retrieved copy into the open batch; returns its ledger row id."""
        tally = run.tally
        uidl = session.keys[message.number][0]
        try:
            placed = session.place(message.number, message.sha256)
            # Stored (again) in every case; read back whenever a delete may follow (else S3's
            # check of the SHA-256 on arrival stands in for the read-back).
            put_verified(
                store,
                raw_key(message.sha256),
                message.file,
                message.sha256,
                message.size,
                read_back=run.box.delete_policy != "keep",
            )
            if isinstance(placed, Known):
                # Read again because its UIDL is shared, or to prove it before DELE: the
                # row's content, archived before.
                tally.known += 1
                return placed.id
            with group.recording():
                recorded = self._record(run.index, placed, message, store)
        except Exception as exc:
            tally.failed += 1
            raise MessageError(
                f"mailbox {run.box.name!r}: UIDL {uidl_text(uidl)} (sha256 {message.sha256}): "
                f"{exc}",
                transient=is_transient(exc),
            ) from exc
        finally:
            message.close()
        session.recorded(recorded.entry)
        tally.bytes += message.size
        tally.relabelled += recorded.relabelled
        if recorded.created:
            tally.archived += 1
        else:
            tally.duplicates += 1
        group.undo(lambda: tally.uncount(message.size, recorded))
        return recorded.delivery_id

    def _record(
        self,
        index: MailboxLedgerIndex,
        placed: Place,
        message: RetrievedMessage,
        store: ObjectStore,
    ) -> Recorded:
        parsed: ParsedMessage | None = None
        texts: AttachmentTexts | None = None
        if index.find_message(message.sha256) is None:
            parsed = parse_original(
                message.file, message.size, self.parse_limits, self.parse_max_bytes
            )
            store_attachments(store, parsed)
            if self.extractor is not None:
                texts = extract_texts(parsed, self.extractor, index.extracted_texts)
        return index.record(
            placed.key, message.sha256, message.size, parsed, placed.relabel, texts=texts
        )

    def _evidence(self, run: MailboxRun, source: MailSource, session: SessionLedger) -> Evidence:
        """Evidence for the earlier copies the delete policy would take (none when keeping)."""
        candidates = allowed_by_policy(run.box, session, {}, now=self.clock()).earlier
        if not candidates:
            return Evidence()
        return gather_evidence(source, self.store, session.listing, candidates)

    def _delete(
        self,
        run: MailboxRun,
        source: MailSource,
        session: SessionLedger,
        archived: dict[int, int],
        evidence: Evidence,
        withheld: set[int],
    ) -> None:
        targets = plan_deletions(
            run.box, session, archived, evidence, withheld=withheld, now=self.clock()
        )
        if self.stop.is_set():
            run.tally.interrupted = True  # no DELE after the signal
            source.close()
            return
        acknowledged = source.delete(sorted(targets))
        if not acknowledged:
            quit_keeping(run, source)
            return
        requested = [targets[number] for number in acknowledged]
        run.ledger.stamp(run.index.mark_delete_requested(requested), "delete_requested_at")
        source.quit()
        run.ledger.stamp(run.index.mark_deleted(requested), "deleted_at")
        run.tally.deleted += len(acknowledged)
