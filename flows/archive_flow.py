"""The `archive-mailboxes` flow: one task run per mailbox, a bounded number at once.

Thin on purpose: everything it does is a call into `archive/`. What Prefect adds is the
fan-out, retries of transient errors, run names, artifacts and logs in the UI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import State, flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.blocks.system import Secret
from prefect.context import get_run_context
from prefect.settings import get_current_settings
from prefect.tasks import exponential_backoff

from archive.config import MailboxConfig, MailboxFile, Settings, load_mailbox_file, load_settings
from archive.errors import ConfigError, MailboxesFailed, is_transient
from archive.pipeline.build import get_archiver
from archive.pipeline.result import RESULT_COLUMNS, MailboxFailed, MailboxResult


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
    """Retry only what a later attempt can fix: never a wrong password or a bad certificate."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


PROGRESS_INTERVAL_SECONDS = 1.0
"""At most one progress update per this many seconds, whatever the message rate."""


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
        self._sent = 0.0
        self._sent_at = time.monotonic()

    def report(self, name: str, fraction: float, *, force: bool = False) -> None:
        with self._lock:
            self.done[name] = min(max(fraction, 0.0), 1.0)
            percent = round(100.0 * sum(self.done.values()) / len(self.done), 1)
            now = time.monotonic()
            due = force or now - self._sent_at >= PROGRESS_INTERVAL_SECONDS
            if percent != self._sent and due:
                update_progress_artifact(self.artifact_id, percent)
                self._sent, self._sent_at = percent, now


@dataclass(frozen=True)
class _Run:
    """What the task runs of one flow run share: its settings and its progress."""

    settings: Settings
    progress: RunProgress


# Task threads find their run by flow run id: settings may hold a database password and a
# lock is not serialisable, so neither can be a task parameter.
_runs: dict[UUID, _Run] = {}


def _report(box: MailboxConfig, result: MailboxResult) -> None:
    run = _current_run()
    if run is not None and result.new:
        run.progress.report(box.name, (result.archived + result.duplicates) / result.new)


def _current_run() -> _Run | None:
    """The run of the flow this task run belongs to."""
    task_run = getattr(get_run_context(), "task_run", None)
    flow_run_id = task_run.flow_run_id if task_run is not None else None
    return _runs.get(flow_run_id) if flow_run_id is not None else None


@task(task_run_name="archive {box.name}", retry_condition_fn=retry_if_transient)
def archive_mailbox(box: MailboxConfig) -> dict[str, Any]:
    run = _current_run()
    if run is None:
        raise RuntimeError("archive_mailbox runs inside the archive-mailboxes flow only")
    archiver = get_archiver(run.settings)
    result = archiver.run(
        box, secret_lookup=read_secret, progress=lambda counts: _report(box, counts)
    )
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
    progress = RunProgress([box.name for box in boxes])
    _runs[flow_run_id] = _Run(settings, progress)
    # Prefect's default task runner, a thread pool, has no bound of its own: the flow submits
    # at most max_parallel_mailboxes task runs at once.
    slots = threading.Semaphore(settings.max_parallel_mailboxes)
    try:
        futures = []
        for box in boxes:
            slots.acquire()
            future = task_with_retries.submit(box)
            future.add_done_callback(lambda _: slots.release())
            futures.append((box, future))
        results: list[dict[str, Any]] = []
        for box, future in futures:
            try:
                results.append(future.result())
            except MailboxFailed as exc:
                results.append(exc.result.to_dict())
            except Exception as exc:
                results.append(
                    MailboxResult(name=box.name, error=f"mailbox {box.name!r}: {exc}").to_dict()
                )
        for box in boxes:
            progress.report(box.name, 1.0, force=True)
    finally:
        del _runs[flow_run_id]
    _publish(results)
    failed = [r for r in results if r["error"]]
    for r in failed:
        logger.error("mailbox %s failed: %s", r["name"], r["error"])
    if failed:
        raise MailboxesFailed(results)
    return results


def _publish(results: list[dict[str, Any]]) -> None:
    table = [{column: r[column] for column in RESULT_COLUMNS} for r in results]
    create_table_artifact(
        key="archive-mailboxes", table=table, description="Per-mailbox counts of this run"
    )
    totals = {
        k: sum(int(r[k]) for r in results)
        for k in ("new", "archived", "duplicates", "deleted", "failed", "bytes")
    }
    failures = "\n".join(f"- **{r['name']}**: {r['error']}" for r in results if r["error"])
    create_markdown_artifact(
        key="archive-mailboxes-summary",
        description="Totals and failures of this run",
        markdown=(
            f"# Archive run\n\n{len(results)} mailbox(es): {totals['archived']} archived, "
            f"{totals['duplicates']} duplicates, {totals['deleted']} deleted, "
            f"{totals['failed']} failed, {totals['bytes']:,} bytes.\n\n"
            + (f"## Failures\n\n{failures}\n" if failures else "No failures.\n")
        ),
    )


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
    `config_path`; without it, the flow builds both itself.
    """
    with _handing_over(str(config_path), prepared):
        state = archive_mailboxes(
            config_path=str(config_path), mailboxes=mailboxes, return_state=True
        )
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, MailboxesFailed):
        return False, outcome.results
    if isinstance(outcome, BaseException):
        raise outcome
    return True, list(outcome)
