"""Deployments of `archive-mailboxes`, and the dispatcher that spreads mailboxes over workers.

Two ways to run on a schedule, both plain Prefect:

- `mailarchive serve` (one process): `archive-mailboxes/<name>` on the mailbox file's cron,
  served by `prefect.serve`; its runs execute in subprocesses of that one process.
- `prefect.yaml` (many machines): `archive-dispatch/scheduled` runs on a `process` work pool
  and hands each mailbox (or batch) to `archive-mailboxes/worker` with `run_deployment`, so
  every worker polling the pool takes a share.

Both deployments of a schedule allow one run at a time; a run that would overlap waits for
the one before it (Prefect's deployment concurrency limit, kept by the server; see
flows/queueing.py for what a run that waited does). Parameters carry the
mailbox file path and mailbox names only: passwords stay where the file says they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, serve
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import get_run_context
from prefect.deployments import run_deployment
from prefect.schedules import Cron

from archive.config import MailboxFile, load_mailbox_file
from archive.errors import DispatchFailed
from flows.archive_flow import archive_mailboxes
from flows.queueing import one_run_at_a_time

WORKER_DEPLOYMENT = "archive-mailboxes/worker"
"""The deployment of prefect.yaml that workers run one mailbox batch with."""

TAGS = ["mailarchive"]


def build_deployment(
    config_path: Path, archive_file: MailboxFile, name: str, paused: bool | None = None
) -> Any:
    """`archive-mailboxes/<name>` for `serve`: the file's cron, one run at a time.

    `paused`: as `mailarchive schedule pause` left it (None: not registered yet, so on);
    registering sends `paused`, and Prefect would otherwise resume a paused schedule.
    """
    schedules = (
        [Cron(archive_file.schedule, timezone=archive_file.timezone or "UTC")]
        if archive_file.schedule
        else None
    )
    return archive_mailboxes.to_deployment(
        name=name,
        schedules=schedules,
        parameters={"config_path": str(config_path.resolve())},
        concurrency_limit=one_run_at_a_time(),
        paused=paused,
        tags=TAGS,
        description=f"Archive the mailboxes of {config_path.resolve()}",
    )


def serve_mailbox_file(config_path: Path, archive_file: MailboxFile, name: str) -> None:
    """Register the deployment and run its flow runs until SIGINT/SIGTERM.

    pause_on_shutdown=False: stopping this process leaves the schedule on, so the runs it
    misses stay visible as Late in the UI and the next `serve` picks them up.
    """
    state = schedule_state(name)
    paused = state.paused if state is not None else None
    serve(build_deployment(config_path, archive_file, name, paused), pause_on_shutdown=False)


@dataclass(frozen=True)
class ScheduleState:
    """A served deployment's schedule, as `mailarchive schedule` shows it."""

    deployment: str
    paused: bool
    schedules: tuple[str, ...]
    """Each schedule: its cron and time zone ("0 4 * * * Europe/Paris")."""


def schedule_state(name: str, *, paused: bool | None = None) -> ScheduleState | None:
    """`archive-mailboxes/<name>`'s schedule; with `paused`, paused (True) or resumed
    (False) first. None if no such deployment is registered.

    Pausing the deployment stops its scheduled runs (the scheduler creates none while it is
    paused); a run triggered by hand still runs. It stays paused across `serve` restarts.
    """
    from prefect.exceptions import ObjectNotFound

    full = f"{archive_mailboxes.name}/{name}"
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(full)
        except ObjectNotFound:
            return None
        if paused is True:
            client.pause_deployment(deployment.id)
        elif paused is False:
            client.resume_deployment(deployment.id)
        if paused is not None:
            deployment = client.read_deployment(deployment.id)
    crons = tuple(
        " ".join(
            str(part)
            for part in (
                getattr(schedule.schedule, "cron", schedule.schedule),
                getattr(schedule.schedule, "timezone", None),
            )
            if part
        )
        for schedule in deployment.schedules
    )
    return ScheduleState(full, bool(deployment.paused), crons)


def _dispatch_run_name() -> str:
    from prefect.runtime import flow_run

    return f"dispatch {Path(str(flow_run.parameters.get('config_path', ''))).name}"


@flow(name="archive-dispatch", flow_run_name=_dispatch_run_name)
def archive_dispatch(
    config_path: str,
    mailboxes: list[str] | None = None,
    deployment: str = WORKER_DEPLOYMENT,
    batch_size: int = 1,
    poll_seconds: float = 2.0,
) -> list[dict[str, Any]]:
    """Hand the mailboxes to `deployment` in batches, one flow run each, and wait for them.

    The idempotency key is this run's id plus the batch, so a retried dispatcher never starts
    a batch twice; a rerun after a crash starts new runs, and the ledger makes them skip what
    was archived already.
    """
    logger = get_run_logger()
    boxes = load_mailbox_file(Path(config_path)).select(mailboxes)
    names = [box.name for box in boxes]
    size = max(1, batch_size)
    batches = [names[i : i + size] for i in range(0, len(names), size)]
    me = get_run_context().flow_run.id  # type: ignore[union-attr]
    children: list[tuple[list[str], FlowRun]] = []
    for batch in batches:
        child = run_deployment(
            deployment,
            parameters={"config_path": config_path, "mailboxes": batch},
            flow_run_name=f"archive {', '.join(batch)}",
            idempotency_key=f"{me}:{','.join(batch)}",
            timeout=0,
            tags=TAGS,
        )
        children.append((batch, child))  # type: ignore[arg-type]
    logger.info("handed %d mailbox(es) to %s in %d run(s)", len(names), deployment, len(batches))

    final = _wait(children, poll_seconds)
    rows = [
        {"mailboxes": ", ".join(batch), "flow run": run.name, "state": run.state_name}
        for batch, run in final
    ]
    create_table_artifact(
        key="archive-dispatch", table=rows, description="Mailbox runs handed to workers"
    )
    failed = [row for row in rows if row["state"] != "Completed"]
    for row in failed:
        logger.error("mailbox run %s (%s): %s", row["flow run"], row["mailboxes"], row["state"])
    if failed:
        raise DispatchFailed(f"{len(failed)} of {len(rows)} mailbox run(s) did not complete")
    return rows


def _wait(
    children: list[tuple[list[str], FlowRun]], poll_seconds: float
) -> list[tuple[list[str], FlowRun]]:
    final: dict[Any, FlowRun] = {}
    with get_client(sync_client=True) as client:
        while len(final) < len(children):
            for _, child in children:
                if child.id not in final:
                    run = client.read_flow_run(child.id)
                    if run.state is not None and run.state.is_final():
                        final[child.id] = run
            if len(final) < len(children):
                time.sleep(poll_seconds)
    return [(batch, final[child.id]) for batch, child in children]
