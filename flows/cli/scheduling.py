"""The deployments' schedules outside `prefect deploy`: backfill past dates (serving them
is `flows.cli.serving`).

Both read ``deploy/prefect.yaml``, so the names, schedules, concurrency limits and tags
are defined once, whichever way the flows are run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from prefect.client.orchestration import SyncPrefectClient

from seqcast.config import PipelineConfig
from seqcast.errors import ConfigError
from tasks.common import BACKFILL_TAG

MAX_BACKFILL_DAYS = 366


def read_deployments(prefect_file: Path) -> list[dict[str, Any]]:
    if not prefect_file.is_file():
        raise ConfigError(f"{prefect_file} not found: run seqcast from the repository root")
    return yaml.safe_load(prefect_file.read_text(encoding="utf-8"))["deployments"]


def logical_dates(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    if end < start:
        raise ConfigError(f"--to must not be before --from. Received: --from {start} --to {end}")
    days = (end - start).days + 1
    if days > MAX_BACKFILL_DAYS:
        raise ConfigError(
            f"a backfill covers at most {MAX_BACKFILL_DAYS} days (one run each). "
            f"Received: {days} days from {start} to {end}; split it."
        )
    return [start + timedelta(days=i) for i in range(days)]


@dataclass(frozen=True)
class BackfillRun:
    """The run a backfill asked for one day: new, or one already requested and not done."""

    day: date
    flow_run_id: str
    state: str
    requested_before: bool


def backfill_key(deployment_id: UUID, day: date, attempt: int) -> str:
    """The idempotency key of the ``attempt``-th backfill run of ``day``: the server keeps
    one run per key, so two backfills of a day (or two racing ones) share a run."""
    return f"seqcast-backfill {deployment_id} {day.isoformat()} {attempt}"


def backfill(
    deployment: str,
    days: list[date],
    config: PipelineConfig | None,
    force: bool,
) -> list[BackfillRun]:
    """Request one run of ``deployment`` per day, scheduled at that day's midnight (UTC),
    so each run's logical date is its day.

    A day whose earlier backfill run has not finished (scheduled, waiting for a slot,
    running) gets that run back, not a second one beside it: two runs of one day would
    run at once and race on what they publish. A day whose runs all finished (completed,
    failed, crashed, cancelled) gets a new run. The runs start as soon as a worker (or
    `seqcast serve`) picks them up; nightly-retrain's concurrency limit runs them one at
    a time. Days a scheduled or backfill run already published are skipped by the runs
    themselves (state ``Skipped``) unless ``force``.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    parameters: dict[str, Any] = {"force": force}
    if config is not None:
        parameters["config"] = config.model_dump(mode="json")
    with get_client(sync_client=True) as client:
        try:
            deployment_id = client.read_deployment_by_name(deployment).id
        except ObjectNotFound:
            raise ConfigError(
                f"deployment {deployment!r} not found: `prefect deployment ls` lists them "
                "(FLOW/DEPLOYMENT); `seqcast deploy` creates seqcast's"
            ) from None
        name = deployment.split("/")[-1]
        return [_request_day(client, deployment_id, name, day, parameters) for day in days]


def _request_day(
    client: SyncPrefectClient,
    deployment_id: UUID,
    name: str,
    day: date,
    parameters: dict[str, Any],
) -> BackfillRun:
    """The day's unfinished backfill run, or a new one under the first attempt number
    whose run is not over. Keyed, so a racing backfill that read the same attempts gets
    the same run from the server instead of a second one."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterIdempotencyKey,
    )
    from prefect.states import Scheduled

    for attempt in count():
        key = backfill_key(deployment_id, day, attempt)
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                idempotency_key=FlowRunFilterIdempotencyKey(any_=[key]),
            ),
            limit=1,
        )
        if found and found[0].state is not None and found[0].state.is_final():
            continue  # that attempt is over: the next one may run
        if found:
            run = found[0]
        else:
            run = client.create_flow_run_from_deployment(
                deployment_id,
                parameters=parameters,
                state=Scheduled(scheduled_time=datetime.combine(day, time(0, 0), tzinfo=UTC)),
                name=f"{name}-{day.isoformat()}-backfill",
                tags=[BACKFILL_TAG],
                idempotency_key=key,
            )
        state = (run.state.name if run.state is not None else None) or "unknown"
        return BackfillRun(day, str(run.id), state, requested_before=bool(found))
    raise AssertionError("unreachable: count() never ends")
