"""What a mailbox run did: `MailboxResult`, computed from the facts a `Tally` collects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from archive.errors import ArchiveError
from archive.index.ledger import LedgerKey, Recorded

__all__ = [
    "RESULT_COLUMNS",
    "STATUSES",
    "MailboxFailed",
    "MailboxResult",
    "RunTotals",
    "Status",
    "Tally",
    "across_attempts",
    "run_totals",
]

Status = Literal["ok", "failed", "skipped", "deferred", "partial"]
STATUSES: tuple[Status, ...] = ("ok", "failed", "skipped", "deferred", "partial")
"""What a mailbox run came to.

- ok: every session ran to its end;
- failed: the run stopped on an error (`error`); the counts say what it committed first;
- skipped: another session held the mailbox, or the run was interrupted before it started;
- deferred: the server's LOGIN-DELAY put the first session off to a later run;
- partial: stopped early with the mailbox not done: a per-run cap (sessions, LOGIN-DELAY
  after a first session) or an interrupt (SIGTERM, SIGINT; `interrupted` is set).
"""

RESULT_COLUMNS = (
    "name", "status", "listed", "new", "archived", "duplicates", "deleted", "failed_messages",
    "not_reached", "repaired", "unrepaired", "bytes", "attempts", "seconds", "note", "error",
)  # fmt: skip
"""The counts of `MailboxResult.to_dict()`, in the order tables show them."""


@dataclass
class MailboxResult:
    """What one mailbox run did; the counts add up:
    new = archived + duplicates + failed_messages + not_reached.

    `listed`: distinct (UIDL, occurrence) keys seen over the run's sessions; `new`: copies
    not archived before that the run set out to retrieve; `failed_messages`: of those, copies
    whose own archiving failed (their store write, parse-and-index or batch commit raised;
    a count of messages; whether the mailbox failed is `status`); `not_reached`: copies the
    run never got to because it stopped first (interrupted, its session failed, or a failed
    message ended the session), left on the server for the next run; `bytes`: octets of the
    originals retrieved and recorded; `attempts`: runs of the mailbox (a retried run counts
    each); `seconds`: wall time from the first attempt's start to the last one's end, retry
    waits included; `relabelled`: ledger rows whose UIDL changed on the server (a UIDL
    reset), relabelled rather than stored again; `repaired`: stored originals found missing
    or damaged and stored again from the server's copy (its bytes hashed to the ledger's
    SHA-256); `unrepaired`: those the server could not repair (its bytes hash differently):
    named in `error`, never deleted from the server.
    """

    name: str
    status: Status = "ok"
    listed: int = 0
    new: int = 0
    archived: int = 0
    duplicates: int = 0
    deleted: int = 0
    failed_messages: int = 0
    not_reached: int = 0
    repaired: int = 0
    unrepaired: int = 0
    bytes: int = 0
    attempts: int = 1
    seconds: float = 0.0
    sessions: int = 0
    relabelled: int = 0
    interrupted: bool = False
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


def across_attempts(earlier: MailboxResult, later: MailboxResult) -> MailboxResult:
    """One result for two attempts of the same mailbox run (a retry after `earlier`).

    What either attempt committed stays counted: archived, duplicates, deleted, bytes,
    sessions, relabelled and repaired add up; `unrepaired` is the later attempt's. Messages
    that failed or were not reached in `earlier` were retried by `later`, so
    `failed_messages`, `not_reached`, the status and the error are the later attempt's; `new`
    keeps the identity new = archived + duplicates + failed_messages + not_reached. `seconds`
    is the later attempt's as given: the caller measures the wall time over all attempts.
    """
    archived = earlier.archived + later.archived
    duplicates = earlier.duplicates + later.duplicates
    notes = [n for n in (earlier.note, later.note) if n]
    return replace(
        later,
        listed=max(earlier.listed, later.listed),
        new=archived + duplicates + later.failed_messages + later.not_reached,
        archived=archived,
        duplicates=duplicates,
        deleted=earlier.deleted + later.deleted,
        bytes=earlier.bytes + later.bytes,
        attempts=earlier.attempts + later.attempts,
        sessions=earlier.sessions + later.sessions,
        relabelled=earlier.relabelled + later.relabelled,
        repaired=earlier.repaired + later.repaired,
        interrupted=earlier.interrupted or later.interrupted,
        note="; ".join(dict.fromkeys(notes)) or None,
    )


class MailboxFailed(ArchiveError):
    """A mailbox run stopped early; carries the partial result and whether to retry.
    `summary`: what the run's record keeps of the error (default: the result's error)."""

    def __init__(self, result: MailboxResult, summary: str | None = None) -> None:
        super().__init__(result.error)
        self.result = result
        self.transient = result.transient
        self.summary = summary if summary is not None else result.error


@dataclass
class Tally:
    """The facts of a run as they happen; every count of `MailboxResult` derives from them.

    `wanted`: copies chosen for retrieval over all sessions; `known`: of those, copies
    re-read only because their UIDL is shared and found archived already; `failed`: copies
    whose archiving raised, or whose batch rolled back. Whatever else was wanted, not known
    and neither archived nor a duplicate when the run ended was not reached.
    `stopped`: why the run ended before the mailbox was done (None: it was done);
    `interrupted`: the run's stop token was set (SIGTERM, SIGINT); `notes`: what the result
    should say besides its counts;
    `repaired`: stored originals rewritten from the server's verified copy; `unrepaired`: one
    line per stored original the server's copy could not repair, naming both hashes.
    """

    seen: set[LedgerKey] = field(default_factory=set)
    wanted: int = 0
    known: int = 0
    archived: int = 0
    duplicates: int = 0
    failed: int = 0
    relabelled: int = 0
    deleted: int = 0
    repaired: int = 0
    unrepaired: list[str] = field(default_factory=list)
    bytes: int = 0
    sessions: int = 0
    stopped: Literal["skipped", "deferred", "partial"] | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def uncount(self, size: int, recorded: Recorded) -> None:
        """A recorded message whose batch rolled back (archive.pipeline.batch): failed."""
        self.failed += 1
        self.bytes -= size
        self.relabelled -= recorded.relabelled
        if recorded.created:
            self.archived -= 1
        else:
            self.duplicates -= 1

    def result(
        self,
        name: str,
        *,
        seconds: float = 0.0,
        note: str | None = None,
        error: str | None = None,
        transient: bool = False,
    ) -> MailboxResult:
        new = self.wanted - self.known
        failed = min(self.failed, new - self.archived - self.duplicates)
        notes = [*self.notes, note] if note else self.notes
        return MailboxResult(
            name=name,
            status="failed" if error is not None else (self.stopped or "ok"),
            listed=len(self.seen),
            new=new,
            archived=self.archived,
            duplicates=self.duplicates,
            deleted=self.deleted,
            failed_messages=failed,
            not_reached=new - self.archived - self.duplicates - failed,
            repaired=self.repaired,
            unrepaired=len(self.unrepaired),
            bytes=self.bytes,
            seconds=seconds,
            sessions=self.sessions,
            relabelled=self.relabelled,
            interrupted=self.interrupted,
            note="; ".join(notes) or None,
            error=error,
            transient=transient,
        )


@dataclass(frozen=True)
class RunTotals:
    """A run over several mailboxes, summed: mailboxes by status, messages by outcome."""

    mailboxes: int
    by_status: dict[str, int]
    archived: int
    duplicates: int
    deleted: int
    failed_messages: int
    not_reached: int
    bytes: int

    @property
    def failed_mailboxes(self) -> int:
        return self.by_status.get("failed", 0)

    def line(self) -> str:
        """'3 mailboxes: 2 ok, 1 failed; 3 archived, 0 duplicates, 0 deleted, …'."""
        statuses = ", ".join(
            f"{self.by_status[status]} {status}" for status in STATUSES if status in self.by_status
        )
        plural = "mailbox" if self.mailboxes == 1 else "mailboxes"
        return (
            f"{self.mailboxes} {plural}: {statuses or 'none'}; {self.archived} archived, "
            f"{self.duplicates} duplicates, {self.deleted} deleted, "
            f"{self.failed_messages} messages failed, "
            + (f"{self.not_reached} not reached, " if self.not_reached else "")
            + f"{self.bytes:,} bytes"
        )


def run_totals(results: Sequence[Mapping[str, object]]) -> RunTotals:
    """Totals of per-mailbox results (`MailboxResult.to_dict()` rows)."""

    def total(key: str) -> int:
        return sum(int(str(r.get(key) or 0)) for r in results)

    by_status: dict[str, int] = {}
    for r in results:
        status = str(r.get("status") or ("failed" if r.get("error") else "ok"))
        by_status[status] = by_status.get(status, 0) + 1
    return RunTotals(
        mailboxes=len(results),
        by_status=by_status,
        archived=total("archived"),
        duplicates=total("duplicates"),
        deleted=total("deleted"),
        failed_messages=total("failed_messages"),
        not_reached=total("not_reached"),
        bytes=total("bytes"),
    )
