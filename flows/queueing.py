"""One run of a deployment at a time, queued rather than dropped.

A served deployment (`mailarchive serve`) and the workers' one allow a single run at once.
With Prefect's CANCEL_NEW a run by hand (`prefect deployment run`, the UI) that became due
in the same second as a cron run was cancelled before its flow started, so nothing ever
said so in its log. They ENQUEUE instead: the later run waits in `AwaitingConcurrencySlot`
and starts when the slot frees. The flow then says in its own log that it waited; a
*scheduled* run that waited ends at once, saying why, so slow runs never pile up scheduled
runs behind them (the next cron run goes on as usual).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

AWAITING_SLOT = "AwaitingConcurrencySlot"
"""The state name Prefect's server gives a run it held back for the deployment's limit."""


def one_run_at_a_time() -> ConcurrencyLimitConfig:
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


@dataclass(frozen=True)
class Waited:
    """A deployment run that waited for the one slot: how long, and whether cron made it."""

    seconds: float
    scheduled: bool

    def line(self) -> str:
        waited = f"waited {self.seconds:.0f} s for the run before it to end"
        if self.scheduled:
            return (
                f"this scheduled run {waited} (one run at a time), so it ends here without "
                "archiving: that run did the work; the next scheduled run goes on as usual"
            )
        return f"this run {waited} (one run at a time); archiving now"


def waited_for_slot(flow_run: Any) -> Waited | None:
    """How this deployment run was held back for the one-run limit; None if it was not (or
    is no deployment run: `mailarchive run`)."""
    if getattr(flow_run, "deployment_id", None) is None:
        return None
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(flow_run.id)
    held = [s for s in states if s.name == AWAITING_SLOT]
    if not held:
        return None
    first = min(s.timestamp for s in held)
    last = max(s.timestamp for s in states)
    return Waited((last - first).total_seconds(), bool(flow_run.auto_scheduled))
