"""What a mailbox run did: `MailboxResult`, computed from the facts a `Tally` collects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from archive.errors import ArchiveError
from archive.index.ledger import LedgerKey

__all__ = ["RESULT_COLUMNS", "MailboxFailed", "MailboxResult", "Tally"]

RESULT_COLUMNS = (
    "name", "listed", "new", "archived", "duplicates", "deleted", "failed", "repaired",
    "unrepaired", "bytes", "seconds", "note", "error",
)  # fmt: skip
"""The counts of `MailboxResult.to_dict()`, in the order tables show them."""


@dataclass
class MailboxResult:
    """What one mailbox run did; the counts add up: new = archived + duplicates + failed.

    `listed`: distinct (UIDL, occurrence) keys seen over the run's sessions; `new`: copies
    not archived before that the run set out to retrieve; `bytes`: octets of the originals
    retrieved and recorded; `seconds`: wall time of the run; `relabelled`: ledger rows whose
    UIDL changed on the server (a UIDL reset), relabelled rather than stored again;
    `repaired`: stored originals found missing or damaged and stored again from the server's
    copy (its bytes hashed to the ledger's SHA-256); `unrepaired`: those the server could not
    repair (its bytes hash differently): named in `error`, never deleted from the server.
    """

    name: str
    listed: int = 0
    new: int = 0
    archived: int = 0
    duplicates: int = 0
    deleted: int = 0
    failed: int = 0
    repaired: int = 0
    unrepaired: int = 0
    bytes: int = 0
    seconds: float = 0.0
    sessions: int = 0
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
class Tally:
    """The facts of a run as they happen; every count of `MailboxResult` derives from them.

    `wanted`: copies chosen for retrieval over all sessions; `known`: of those, copies
    re-read only because their UIDL is shared and found archived already. Whatever was
    wanted, not known and neither archived nor a duplicate when the run ended has failed.
    `repaired`: stored originals rewritten from the server's verified copy; `unrepaired`: one
    line per stored original the server's copy could not repair, naming both hashes.
    """

    seen: set[LedgerKey] = field(default_factory=set)
    wanted: int = 0
    known: int = 0
    archived: int = 0
    duplicates: int = 0
    relabelled: int = 0
    deleted: int = 0
    repaired: int = 0
    unrepaired: list[str] = field(default_factory=list)
    bytes: int = 0
    sessions: int = 0

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
        return MailboxResult(
            name=name,
            listed=len(self.seen),
            new=new,
            archived=self.archived,
            duplicates=self.duplicates,
            deleted=self.deleted,
            failed=new - self.archived - self.duplicates,
            repaired=self.repaired,
            unrepaired=len(self.unrepaired),
            bytes=self.bytes,
            seconds=seconds,
            sessions=self.sessions,
            relabelled=self.relabelled,
            note=note,
            error=error,
            transient=transient,
        )
