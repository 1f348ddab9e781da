"""A deployment run held back for the one-run limit says so; a scheduled one ends at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from flows import queueing

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@dataclass
class _State:
    name: str
    timestamp: datetime


@dataclass
class _Run:
    deployment_id: object
    auto_scheduled: bool
    id: object = None


class _Client:
    def __init__(self, states: list[_State]) -> None:
        self.states = states

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def read_flow_run_states(self, flow_run_id: object) -> list[_State]:
        return self.states


def _waited(monkeypatch, states: list[_State], *, scheduled: bool, deployment: bool = True):
    monkeypatch.setattr(queueing, "get_client", lambda sync_client: _Client(states))
    run = _Run(uuid4() if deployment else None, scheduled, uuid4())
    return queueing.waited_for_slot(run)


QUEUED = [
    _State("Scheduled", T0),
    _State("Pending", T0),
    _State("AwaitingConcurrencySlot", T0 + timedelta(seconds=1)),
    _State("AwaitingConcurrencySlot", T0 + timedelta(seconds=31)),
    _State("Pending", T0 + timedelta(seconds=61)),
    _State("Running", T0 + timedelta(seconds=61)),
]


def test_a_run_by_hand_that_waited_says_how_long(monkeypatch):
    waited = _waited(monkeypatch, QUEUED, scheduled=False)
    assert waited is not None and not waited.scheduled
    assert waited.line() == (
        "this run waited 60 s for the run before it to end (one run at a time); archiving now"
    )


def test_a_scheduled_run_that_waited_ends_and_says_why(monkeypatch):
    waited = _waited(monkeypatch, QUEUED, scheduled=True)
    assert waited is not None and waited.scheduled
    assert "ends here without archiving" in waited.line()


def test_a_run_that_never_waited_is_left_alone(monkeypatch):
    states = [s for s in QUEUED if s.name != "AwaitingConcurrencySlot"]
    assert _waited(monkeypatch, states, scheduled=True) is None


def test_a_run_of_no_deployment_is_left_alone(monkeypatch):
    assert _waited(monkeypatch, QUEUED, scheduled=False, deployment=False) is None


@pytest.mark.parametrize("strategy", ["ENQUEUE"])
def test_served_deployments_queue_instead_of_cancelling(strategy: str):
    assert queueing.one_run_at_a_time().collision_strategy == strategy
