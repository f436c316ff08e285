"""Backfill faults tried from outside (docs/faults.md, 14): a date backfilled twice must
not get a second run beside the first, which would run at once and race on what the two
publish. Against the harness's Prefect API; no worker, so the runs stay Scheduled, as they
do when the workers are busy or down."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest

from flows.cli.scheduling import backfill
from seqcast.errors import ConfigError

pytestmark = pytest.mark.flow

DAY, NEXT_DAY = date(2026, 1, 1), date(2026, 1, 2)


def deployment(name: str) -> tuple[str, UUID]:
    """A deployment on the harness server that nothing runs; (FLOW/NAME, id)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(f"backfill-{name}")
        return f"backfill-{name}/nightly", client.create_deployment(flow_id=flow_id, name="nightly")


def runs_by_day(deployment_id: UUID) -> dict[date, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])
            )
        )
    found: dict[date, list[str]] = {}
    for run in runs:
        assert run.expected_start_time is not None
        found.setdefault(run.expected_start_time.date(), []).append(str(run.id))
    return found


def finish(flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), Failed(), force=True)


def test_a_date_backfilled_twice_keeps_one_run_until_it_finishes() -> None:
    name, deployment_id = deployment("twice")
    first = backfill(name, [DAY, NEXT_DAY], None, force=False)
    assert [run.requested_before for run in first] == [False, False]

    # Again, even forced, while the first runs wait for a worker: the same runs back.
    again = backfill(name, [DAY, NEXT_DAY], None, force=True)
    assert [run.flow_run_id for run in again] == [run.flow_run_id for run in first]
    assert [(run.requested_before, run.state) for run in again] == [(True, "Scheduled")] * 2
    assert runs_by_day(deployment_id) == {
        DAY: [first[0].flow_run_id], NEXT_DAY: [first[1].flow_run_id]
    }  # fmt: skip

    # Once a date's run is over (here it failed), a backfill of it is a new attempt.
    finish(first[0].flow_run_id)
    (retry,) = backfill(name, [DAY], None, force=False)
    assert not retry.requested_before and retry.flow_run_id != first[0].flow_run_id
    assert sorted(runs_by_day(deployment_id)[DAY]) == sorted(
        [first[0].flow_run_id, retry.flow_run_id]
    )
    (still,) = backfill(name, [DAY], None, force=False)
    assert still.flow_run_id == retry.flow_run_id


def test_backfill_runs_are_scheduled_at_their_days_midnight() -> None:
    from prefect.client.orchestration import get_client

    name, _ = deployment("midnight")
    (run,) = backfill(name, [DAY], None, force=True)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(run.flow_run_id))
    assert flow_run.expected_start_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert (flow_run.name, flow_run.tags, flow_run.parameters) == (
        "nightly-2026-01-01-backfill", ["backfill"], {"force": True}
    )  # fmt: skip


def test_backfill_of_an_unknown_deployment_names_it() -> None:
    with pytest.raises(ConfigError, match="'nowhere/nightly' not found"):
        backfill("nowhere/nightly", [DAY], None, force=False)
