"""Group commit: the messages of a session recorded in one transaction per batch.

A commit waits for PostgreSQL to flush its WAL; one per message was the largest single cost
of archiving (docs/benchmarks.md). A `GroupCommit` keeps one `MailboxLedgerIndex.batch()`
open and commits it after `max_messages` messages or `max_seconds`, whichever comes first,
and always before the session goes on to DELE or QUIT. What must hold still holds:

- each message commits with its ledger row (same transaction), so it is searchable when the
  ledger says it is archived;
- nothing is deleted before its commit: DELE follows `close()`, and an exception rolls back
  the open batch, whose messages stay on the server (the session is dropped without QUIT);
- its objects were stored and read back (`put_verified`) before `record`, so before commit.

Counts are taken as each message is recorded (progress shows them at once) and undone if
their batch rolls back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType

from archive.pipeline.ports import MailboxLedgerIndex

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)


class GroupCommit:
    """`with GroupCommit(index, n, seconds) as group:` record each message inside
    `group.recording()`, then call `group.tick()`.

    Leaving on an exception raised outside a record (the server dropped the connection, a
    stop) commits what was recorded: each of those records is whole; if that commit fails
    too, the first exception is the one raised. An exception inside a record, or a failed
    commit, rolls the batch back and undoes its counts (`undo`): a database failure loses
    the open batch's work, never mail (nothing of it was deleted; the next run retries).
    """

    def __init__(
        self,
        index: MailboxLedgerIndex,
        max_messages: int,
        max_seconds: float,
        before_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.index = index
        self.max_messages = max(1, max_messages)
        self.max_seconds = max_seconds
        self.before_commit = before_commit
        self.clock = clock
        self._open: ExitStack | None = None
        self._count = 0
        self._opened_at = 0.0
        self._undo: list[Callable[[], None]] = []
        self._in_record = False

    def __enter__(self) -> GroupCommit:
        self._begin()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        elif self._in_record:
            self._rollback(kind, exc, tb)
        else:
            try:
                self.commit()
            except Exception as failed:
                # The first failure is the cause (say, the server dropped the connection);
                # the batch is rolled back and its messages stay on the server, undeleted.
                log.warning("batch not committed after %s: %s", kind.__name__, failed)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Around one message's record: an exception inside leaves the batch to roll back."""
        self._in_record = True
        yield
        self._in_record = False

    def undo(self, counted: Callable[[], None]) -> None:
        """Run `counted` if the message recorded just now is rolled back."""
        self._undo.append(counted)

    def tick(self) -> None:
        """One message went through: commit if the batch is full or old enough."""
        self._count += 1
        if self._count >= self.max_messages or self.clock() - self._opened_at >= self.max_seconds:
            self.commit()
            self._begin()

    def commit(self) -> None:
        """Make the batch's objects durable, then commit its rows (before DELE or QUIT)."""
        opened, self._open = self._open, None
        if opened is None:
            return
        try:
            if self._count:
                self.before_commit()
        except BaseException as exc:
            self._rollback(type(exc), exc, exc.__traceback__, opened)
            raise
        try:
            opened.close()
        except BaseException:
            self._run_undo()  # the transaction did not commit
            raise
        self._undo.clear()
        self._count = 0

    def _rollback(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        opened: ExitStack | None = None,
    ) -> None:
        opened, self._open = opened or self._open, None
        try:
            if opened is not None:
                opened.__exit__(kind, exc, tb)
        finally:
            self._run_undo()

    def _run_undo(self) -> None:
        undo, self._undo = self._undo, []
        for counted in reversed(undo):
            counted()
        self._count = 0

    def _begin(self) -> None:
        stack = ExitStack()
        stack.enter_context(self.index.batch())
        self._open = stack
        self._opened_at = self.clock()
        self._in_record = False
