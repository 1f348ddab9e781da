"""The `archive-mailboxes` flow: one task run per mailbox, a bounded number at once.

Thin on purpose: everything it does is a call into `archive/`. What Prefect adds is the
fan-out, retries of transient errors, run names, artifacts and logs in the UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.system import Secret
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from archive.archiver import MailboxFailed, MailboxResult
from archive.config import MailboxConfig, Settings, load_mailbox_file
from archive.errors import ArchiveError, is_transient
from archive.report import RESULT_COLUMNS
from archive.runtime import get_archiver


class MailboxesFailed(ArchiveError):
    """Raised at the end of a flow run in which some mailbox failed; carries all results."""

    def __init__(self, results: list[dict[str, Any]]) -> None:
        failed = [r["name"] for r in results if r["error"]]
        super().__init__(f"{len(failed)} of {len(results)} mailbox(es) failed: {', '.join(failed)}")
        self.results = results


def read_secret(name: str) -> str:
    """password_secret names a Prefect Secret block; its value is read only at login."""
    value = Secret.load(name).get()
    return str(value)


def retry_if_transient(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry only what a later attempt can fix: never a wrong password or a bad certificate."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


@task(task_run_name="archive {box.name}", retry_condition_fn=retry_if_transient)
def archive_mailbox(box: MailboxConfig) -> dict[str, Any]:
    archiver = get_archiver(Settings())
    return archiver.run(box, secret_lookup=read_secret).to_dict()


@flow(
    name="archive-mailboxes",
    # Prefect's thread pool is unbounded by default; the bound is the mailbox parallelism.
    task_runner=ThreadPoolTaskRunner(max_workers=Settings().max_parallel_mailboxes),
)
def archive_mailboxes(config_path: str, mailboxes: list[str] | None = None) -> list[dict[str, Any]]:
    """Archive the mailboxes of a mailbox file (all of them, or those named)."""
    logger = get_run_logger()
    settings = Settings()
    boxes = load_mailbox_file(Path(config_path)).select(mailboxes)
    logger.info("archiving %d mailbox(es) from %s", len(boxes), config_path)
    # Exponential backoff with jitter, for transient errors only (retry_if_transient).
    task_with_retries = archive_mailbox.with_options(
        retries=settings.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.retry_delay_seconds),
        retry_jitter_factor=0.5,
    )
    futures = [(box, task_with_retries.submit(box)) for box in boxes]
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
        markdown=(
            f"# Archive run\n\n{len(results)} mailbox(es): {totals['archived']} archived, "
            f"{totals['duplicates']} duplicates, {totals['deleted']} deleted, "
            f"{totals['failed']} failed, {totals['bytes']:,} bytes.\n\n"
            + (f"## Failures\n\n{failures}\n" if failures else "No failures.\n")
        ),
    )


def run_archive(
    config_path: Path, mailboxes: list[str] | None, max_workers: int
) -> tuple[bool, list[dict[str, Any]]]:
    """Run the flow in this process; returns (all ok, per-mailbox results)."""
    runner = archive_mailboxes.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=max_workers)
    )
    state = runner(config_path=str(config_path), mailboxes=mailboxes, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, MailboxesFailed):
        return False, outcome.results
    if isinstance(outcome, BaseException):
        raise outcome
    return True, list(outcome)
