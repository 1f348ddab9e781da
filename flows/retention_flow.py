"""`apply-retention`: `mailarchive retention` as a Prefect flow, to run on a schedule.

Thin: the policies come from the mailbox file, the work from archive.pipeline.retention.
Serve it with a schedule, e.g. daily at 03:00:

    from flows.retention_flow import apply_retention
    apply_retention.serve(name="nightly", cron="0 3 * * *",
                          parameters={"config": "/etc/mailarchive/mailboxes.toml"})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from archive.config import load_mailbox_file, load_settings
from archive.pipeline.build import open_database
from archive.pipeline.retention import run


@flow(name="apply-retention", log_prints=False)
def apply_retention(config: str, apply: bool = True) -> dict[str, Any]:
    """Remove (or, with apply=False, list) what the mailbox file's policies expire; gc then
    removes the objects. Returns the report as JSON (also recorded in the audit trail)."""
    archive_file = load_mailbox_file(Path(config))
    _, engine = open_database(load_settings(), pool_size=1)
    try:
        report = run(engine, archive_file, apply=apply)
    finally:
        engine.dispose()
    logger = get_run_logger()
    for box in report.mailboxes:
        logger.info(
            "%s: %d expired, %d held%s",
            box.policy.mailbox,
            box.expired,
            box.held,
            " (busy: skipped)" if box.busy else "",
        )
    return report.as_json()
