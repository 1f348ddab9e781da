"""The artifacts of an `archive-mailboxes` run: progress while it runs, then a table of the
per-mailbox results and a summary that counts failed mailboxes and failed messages apart."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from archive.pipeline.result import RESULT_COLUMNS, run_totals

PROGRESS_INTERVAL_SECONDS = 1.0
"""At most one progress update per this many seconds, whatever the message rate."""

UNFINISHED_CEILING = 99.9
"""Where progress stops for a run that failed or was interrupted: never shown as done."""


class RunProgress:
    """The run's progress artifact: the mean, over its mailboxes, of the share of new messages
    done. Task threads report into it; the API is called at most once a second."""

    def __init__(self, names: list[str]) -> None:
        artifact_id = create_progress_artifact(
            progress=0.0,
            key="archive-mailboxes-progress",
            description=f"New messages archived, averaged over {len(names)} mailbox(es)",
        )
        assert isinstance(artifact_id, UUID)  # a sync call returns the id, not a coroutine
        self.artifact_id = artifact_id
        self.done = dict.fromkeys(names, 0.0)
        self._lock = threading.Lock()
        # Held while a value goes to the API: one thread sends, the others never wait for it.
        self._sending = threading.Lock()
        self._unfinished = False  # set by finish(): never shown as done
        self._sent = 0.0
        self._sent_at = time.monotonic()

    def report(self, name: str, fraction: float) -> None:
        with self._lock:
            self.done[name] = min(max(fraction, 0.0), 1.0)
        self._send(force=False)

    def finish(self, results: Sequence[dict[str, Any]]) -> None:
        """The last value: 100 only when every mailbox ran to its end (ok, skipped, deferred
        or stopped at a cap); a failed or interrupted run stays below it."""
        with self._lock:
            for r in results:
                if r["status"] == "failed" or r.get("interrupted"):
                    self._unfinished = True
                    new = int(r["new"])
                    done = int(r["archived"]) + int(r["duplicates"])
                    self.done[r["name"]] = done / new if new else 0.0
                else:
                    self.done[r["name"]] = 1.0
        self._send(force=True)

    def _percent(self) -> float:
        percent = round(100.0 * sum(self.done.values()) / max(1, len(self.done)), 1)
        return min(percent, UNFINISHED_CEILING) if self._unfinished else percent

    def _send(self, *, force: bool) -> None:
        """Send the latest value if it changed and is due. The API call is made outside
        `_lock`, by one thread at a time: a task thread that finds another one sending goes
        on at once (the sender sends the latest value again before it lets go), so no task
        waits for the API: with the lock held over the call, every task thread reporting
        during a slow API call waited for it (docs/benchmarks.md, Prefect overhead)."""
        if not self._sending.acquire(blocking=force):
            return
        try:
            while True:
                with self._lock:
                    now = time.monotonic()
                    if not force and now - self._sent_at < PROGRESS_INTERVAL_SECONDS:
                        return
                    percent = self._percent()
                    if percent == self._sent:
                        return
                update_progress_artifact(self.artifact_id, percent)
                self._sent, self._sent_at = percent, now
        finally:
            self._sending.release()


def publish(results: Sequence[dict[str, Any]], interrupted: str | None = None) -> None:
    """The table of per-mailbox results and the run's summary (markdown)."""
    table = [{column: r[column] for column in RESULT_COLUMNS} for r in results]
    create_table_artifact(
        key="archive-mailboxes", table=table, description="Per-mailbox counts of this run"
    )
    totals = run_totals(results)
    failures = "\n".join(
        f"- **{r['name']}**: {r['error']}" for r in results if r["status"] == "failed"
    )
    heading = "# Archive run" + (f" (interrupted by {interrupted})" if interrupted else "")
    stopped = (
        f"Stopped by {interrupted}: no session, RETR or DELE after it; what was committed "
        "is counted below.\n\n"
        if interrupted
        else ""
    )
    create_markdown_artifact(
        key="archive-mailboxes-summary",
        description="Totals and failures of this run",
        markdown=(
            f"{heading}\n\n{stopped}{totals.line()}.\n\n"
            + (
                f"## Failures ({totals.failed_mailboxes} of {totals.mailboxes} mailboxes)"
                f"\n\n{failures}\n"
                if failures
                else "No mailbox failed.\n"
            )
        ),
    )
