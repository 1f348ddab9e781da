"""Progress of `mailarchive run` on a terminal: a bar per mailbox (messages and bytes), fed by
the flow's observer from the task threads; nothing on a pipe, where the run ends with one
summary line instead (archive/app/run_view.py)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from archive.app.report import human_bytes

if TYPE_CHECKING:
    from archive.pipeline.result import MailboxResult

__all__ = ["MailboxProgress", "progress_display"]


class MailboxProgress:
    """One rich task per mailbox: messages done of those new, the bytes retrieved, status.

    `retries`: the run's retries per mailbox, if known; an attempt that failed with a
    transient error and has retries left then shows as retrying, its clock running, instead
    of as failed while the retry waits.
    """

    def __init__(self, progress: Progress, retries: int | None = None) -> None:
        self.progress = progress
        self.retries = retries
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, result: MailboxResult) -> None:
        # While a session runs, `not_reached` counts every copy not yet stored.
        done = result.archived + result.duplicates
        state: str = result.status if result.status != "ok" or result.seconds else "running"
        retrying = (
            result.status == "failed"
            and result.transient
            and self.retries is not None
            and result.attempts <= self.retries
        )
        if retrying:
            state = f"attempt {result.attempts} failed, retrying"
        size = human_bytes(result.bytes)
        with self._lock:
            task = self._tasks.get(name)
            if task is None:
                task = self.progress.add_task(name, total=None, size=size, state=state)
                self._tasks[name] = task
        # Unknown until the listing is in; once the run ended, 0 new is 0/0, not 0/?.
        total = result.new if result.new or not (state == "running" or retrying) else None
        self.progress.update(task, completed=done, total=total, size=size, state=state)


@contextmanager
def progress_display(
    console: Console, retries: int | None = None
) -> Iterator[MailboxProgress | None]:
    """A live display on `console` if it is a terminal, else None (cron: no bars);
    `retries` as for `MailboxProgress`."""
    if not console.is_terminal:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}", style="bold"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("msgs {task.fields[size]:>9}"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress, _logs_above(progress):
        yield MailboxProgress(progress, retries)


@contextmanager
def _logs_above(progress: Progress) -> Iterator[None]:
    """Log lines above the bars, not through them: the terminal's log handlers (Prefect's
    has a rich console of its own) kept the stream they had at start-up, which bypasses the
    live display's redirect of sys.stderr; they write to that redirect while it is on."""
    if not isinstance(sys.stderr, FileProxy):
        yield
        return
    proxy: Any = sys.stderr  # the live display's FileProxy: a line is printed above the bars
    terminal = (sys.__stderr__, progress.console.file)
    saved: list[tuple[logging.Handler, Any]] = []
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            inner = getattr(handler, "console", None)
            if isinstance(inner, Console) and inner.file in terminal:
                saved.append((handler, inner.file))
                inner.file = proxy
            elif isinstance(handler, logging.StreamHandler) and handler.stream in terminal:
                saved.append((handler, handler.stream))
                handler.setStream(proxy)
    try:
        yield
    finally:
        for handler, stream in saved:
            inner = getattr(handler, "console", None)
            if isinstance(inner, Console):
                inner.file = stream
            else:
                assert isinstance(handler, logging.StreamHandler)
                handler.setStream(stream)
