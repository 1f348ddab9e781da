"""The `archive-mailboxes` flow: one task run per mailbox, a bounded number at once.

Thin on purpose: everything it does is a call into `archive/`. What Prefect adds is the
fan-out, retries of transient errors, run names, artifacts and logs in the UI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import State, flow, get_run_logger, task
from prefect.blocks.system import Secret
from prefect.context import get_run_context
from prefect.exceptions import TerminationSignal
from prefect.settings import get_current_settings
from prefect.states import Cancelled
from prefect.tasks import exponential_backoff

from archive.config import MailboxConfig, MailboxFile, Settings, load_mailbox_file, load_settings
from archive.errors import ConfigError, MailboxesFailed, is_transient
from archive.pipeline.build import get_archiver
from archive.pipeline.result import MailboxFailed, MailboxResult, across_attempts
from archive.pipeline.stop import Stop, stopping_on_signals
from flows.artifacts import RunProgress, publish
from flows.queueing import waited_for_slot

Observer = Callable[[str, MailboxResult], None]
"""Told a mailbox's name and its counts so far (all attempts), from the task's thread."""


def _archive_logs_to_prefect() -> None:
    """Send the `archive` package's INFO logs to the run's log in the UI.

    What PREFECT_LOGGING_EXTRA_LOGGERS=archive does, but also where nobody set it before
    Prefect was imported (a worker, a served run, tests).
    """
    archive_logger = logging.getLogger("archive")
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in archive_logger.handlers:
            archive_logger.addHandler(handler)
    if archive_logger.level == logging.NOTSET or archive_logger.level > logging.INFO:
        archive_logger.setLevel(logging.INFO)


_archive_logs_to_prefect()


def check_secrets(boxes: tuple[MailboxConfig, ...]) -> None:
    """Fail before any mailbox runs if a `password_secret` names no Secret block."""
    missing = []
    for box in boxes:
        if box.password_secret is None:
            continue
        try:
            Secret.load(box.password_secret)
        except ValueError:
            missing.append(
                f"mailbox {box.name!r}: Prefect Secret block {box.password_secret!r} not found"
            )
    if missing:
        raise ConfigError("; ".join(missing))


def read_secret(name: str) -> str:
    """password_secret names a Prefect Secret block; its value is read only at login."""
    block = Secret.load(name)
    assert isinstance(block, Secret)  # a sync call returns the block, not a coroutine
    return str(block.get())


def retry_if_transient(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry only what a later attempt can fix: never a wrong password or a bad certificate,
    and nothing once the run was told to stop."""
    run = _runs.get(getattr(task_run, "flow_run_id", None))  # type: ignore[arg-type]
    if run is not None and run.stop.is_set():
        return False
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


@dataclass
class _Run:
    """What the task runs of one flow run share: settings, progress, the stop token, and what
    each mailbox's attempts committed so far (a retry adds to it, never starts from 0)."""

    settings: Settings
    progress: RunProgress
    stop: Stop
    # The entry point's own display (`mailarchive run` on a terminal): each mailbox's counts.
    observer: Observer | None = None
    started: dict[str, float] = field(default_factory=dict)
    carried: dict[str, MailboxResult] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, name: str) -> None:
        with self._lock:
            self.started.setdefault(name, time.monotonic())

    def carry(self, name: str, attempt: MailboxResult) -> MailboxResult:
        """This attempt added to the earlier ones; the time is since the first one began."""
        with self._lock:
            earlier = self.carried.get(name)
            combined = attempt if earlier is None else across_attempts(earlier, attempt)
            started = self.started.get(name)
            if started is not None:
                combined = replace(combined, seconds=time.monotonic() - started)
            self.carried[name] = combined
            return combined


# Task threads find their run by flow run id: settings may hold a database password and a
# lock is not serialisable, so neither can be a task parameter.
_runs: dict[UUID, _Run] = {}


def _report(box: MailboxConfig, result: MailboxResult) -> None:
    run = _current_run()
    if run is None:
        return
    earlier = run.carried.get(box.name)
    if earlier is not None:
        result = across_attempts(earlier, result)
    if result.new:
        run.progress.report(box.name, (result.archived + result.duplicates) / result.new)
    if run.observer is not None:
        run.observer(box.name, result)


def _current_run() -> _Run | None:
    """The run of the flow this task run belongs to."""
    task_run = getattr(get_run_context(), "task_run", None)
    flow_run_id = task_run.flow_run_id if task_run is not None else None
    return _runs.get(flow_run_id) if flow_run_id is not None else None


def _told(run: _Run, result: MailboxResult) -> MailboxResult:
    """An attempt's end, told to the entry point's display; returns `result`."""
    if run.observer is not None:
        run.observer(result.name, result)
    return result


@task(task_run_name="archive {box.name}", retry_condition_fn=retry_if_transient)
def archive_mailbox(box: MailboxConfig) -> dict[str, Any]:
    run = _current_run()
    if run is None:
        raise RuntimeError("archive_mailbox runs inside the archive-mailboxes flow only")
    run.begin(box.name)
    try:
        archiver = replace(get_archiver(run.settings), stop=run.stop)
        attempt = archiver.run(
            box, secret_lookup=read_secret, progress=lambda counts: _report(box, counts)
        )
    except MailboxFailed as exc:
        raise MailboxFailed(_told(run, run.carry(box.name, exc.result))) from exc
    except Exception as exc:
        # Before the archiver had a result (the database, the store): an attempt all the same.
        failed = MailboxResult(
            name=box.name,
            status="failed",
            error=f"mailbox {box.name!r}: {exc}",
            transient=is_transient(exc),
        )
        raise MailboxFailed(_told(run, run.carry(box.name, failed))) from exc
    result = _told(run, run.carry(box.name, attempt))
    if result.status != "failed" and not result.interrupted:
        run.progress.report(box.name, 1.0)
    return result.to_dict()


def _flow_run_name() -> str:
    """'archive sales, legal' for named mailboxes, else 'archive mailboxes.toml'."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    names = parameters.get("mailboxes")
    if names:
        return f"archive {', '.join(names)}"
    return f"archive {Path(str(parameters.get('config_path', ''))).name}"


@flow(
    name="archive-mailboxes",
    flow_run_name=_flow_run_name,
)
def archive_mailboxes(config_path: str, mailboxes: list[str] | None = None) -> list[dict[str, Any]]:
    """Archive the mailboxes of a mailbox file (all of them, or those named)."""
    logger = get_run_logger()
    waited = waited_for_slot(get_run_context().flow_run)  # type: ignore[union-attr]
    if waited is not None:
        if waited.scheduled:
            logger.warning(waited.line())
            return []
        logger.info(waited.line())
    settings, archive_file = _prepared_for(config_path)
    boxes = archive_file.select(mailboxes)
    check_secrets(boxes)
    logger.info("archiving %d mailbox(es) from %s", len(boxes), config_path)
    # Exponential backoff with jitter, for transient errors only (retry_if_transient).
    task_with_retries = archive_mailbox.with_options(
        retries=settings.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.retry_delay_seconds),
        retry_jitter_factor=0.5,
    )
    flow_run_id = get_run_context().flow_run.id  # type: ignore[union-attr]
    stop, observer = _stop_for(config_path)
    progress = RunProgress([box.name for box in boxes])
    run = _runs[flow_run_id] = _Run(settings, progress, stop, observer)
    try:
        # SIGTERM/SIGINT set the stop token while the mailboxes run (in the main thread only:
        # a served or worker run is its own process, so this holds there too). Prefect's
        # SIGTERM handler, which would crash the run at once, is back when this ends.
        with stopping_on_signals(stop):
            results = _archive_all(task_with_retries, boxes, run)
    finally:
        del _runs[flow_run_id]
    progress.finish(results)
    publish(results, stop.signal_name or ("stop" if stop.is_set() else None))
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        logger.error("mailbox %s failed: %s", r["name"], r["error"])
    if stop.is_set():
        message = f"interrupted by {stop.signal_name or 'a stop request'}"
        logger.warning("%s: committed work is counted, nothing deleted after it", message)
        return Cancelled(message=message, data=Interrupted(results, stop.signum))  # type: ignore[return-value]
    if failed:
        raise MailboxesFailed(results)
    return results


@dataclass(frozen=True)
class Interrupted:
    """What an interrupted run returns (as its Cancelled state's data): the results so far
    and the signal that stopped it."""

    results: list[dict[str, Any]]
    signum: int | None


def _archive_all(
    task_with_retries: Any, boxes: tuple[MailboxConfig, ...], run: _Run
) -> list[dict[str, Any]]:
    """A task run per mailbox, at most max_parallel_mailboxes at once; none starts after a stop."""
    # Prefect's default task runner, a thread pool, has no bound of its own.
    slots = threading.Semaphore(run.settings.max_parallel_mailboxes)
    futures: list[tuple[MailboxConfig, Any]] = []
    for box in boxes:
        slots.acquire()
        if run.stop.is_set():
            slots.release()
            futures.append((box, None))
            continue
        future = task_with_retries.submit(box)
        future.add_done_callback(lambda _: slots.release())
        futures.append((box, future))
    results: list[dict[str, Any]] = []
    for box, future in futures:
        if future is None:
            results.append(
                MailboxResult(
                    name=box.name,
                    status="skipped",
                    attempts=0,
                    interrupted=True,
                    note="not started: the run was interrupted",
                ).to_dict()  # fmt: skip
            )
            continue
        try:
            results.append(future.result())
        except MailboxFailed as exc:
            results.append(exc.result.to_dict())
        except Exception as exc:
            carried = run.carried.get(box.name)
            error = f"mailbox {box.name!r}: {exc}"
            result = (
                replace(carried, status="failed", error=error)
                if carried is not None
                else MailboxResult(name=box.name, status="failed", error=error)
            )
            results.append(result.to_dict())
    return results


def prefect_api_url() -> str | None:
    """PREFECT_API_URL from the environment or the active profile; None: a temporary server."""
    url = get_current_settings().api.url
    return str(url) if url else None


@dataclass(frozen=True)
class Prepared:
    """What an entry point of this process built already for a run: the flow takes these
    instead of reading the environment and parsing the mailbox file a second time."""

    settings: Settings
    archive_file: MailboxFile | None = None
    # The entry point's stop token: its signal handlers and the flow's set the same one.
    stop: Stop | None = None
    # Told each mailbox's counts as they change, in the task's thread (a progress display).
    progress: Observer | None = None


_prepared: dict[str, Prepared] = {}
_prepared_lock = threading.Lock()


@contextmanager
def _handing_over(config_path: str, prepared: Prepared | None) -> Iterator[None]:
    if prepared is None:
        yield
        return
    with _prepared_lock:
        _prepared[config_path] = prepared
    try:
        yield
    finally:
        with _prepared_lock:
            _prepared.pop(config_path, None)


def _stop_for(config_path: str) -> tuple[Stop, Observer | None]:
    """The entry point's stop token and progress observer, if it handed them over."""
    with _prepared_lock:
        prepared = _prepared.get(config_path)
    if prepared is None:
        return Stop(), None
    return prepared.stop or Stop(), prepared.progress


def _prepared_for(config_path: str) -> tuple[Settings, MailboxFile]:
    """The run's settings and mailbox file: handed over in-process, else built here, once."""
    with _prepared_lock:
        prepared = _prepared.get(config_path)
    settings = prepared.settings if prepared is not None else load_settings()
    if prepared is not None and prepared.archive_file is not None:
        return settings, prepared.archive_file
    return settings, load_mailbox_file(Path(config_path))


def run_archive(
    config_path: Path, mailboxes: list[str] | None, prepared: Prepared | None = None
) -> tuple[bool, list[dict[str, Any]]]:
    """Run the flow in this process; returns (all ok, per-mailbox results).

    `prepared`: the settings and the checked mailbox file the caller built from
    `config_path`; without it, the flow builds both itself. An interrupted run (its stop
    token set) is not ok; its results are what was committed before the stop.
    """
    with _handing_over(str(config_path), prepared):
        try:
            state = archive_mailboxes(
                config_path=str(config_path), mailboxes=mailboxes, return_state=True
            )
        except TerminationSignal:
            # SIGTERM while Prefect's engine, not the flow body, held the signal: the run
            # is recorded Crashed and no mailbox result exists. The caller's handler (put
            # back by the engine, which then re-sends the signal) has set its stop token.
            return False, []
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, Interrupted):
        return False, outcome.results
    if isinstance(outcome, MailboxesFailed):
        return False, outcome.results
    if isinstance(outcome, BaseException):
        raise outcome
    return True, list(outcome)
