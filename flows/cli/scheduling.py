"""The deployments' schedules outside `prefect deploy`: serve them, or backfill past dates.

Both read ``deploy/prefect.yaml``, so the names, schedules, concurrency limits and tags
are defined once, whichever way the flows are run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow, load_flow_from_entrypoint

from seqcast.config import PipelineConfig
from seqcast.errors import ConfigError
from tasks.common import sync_result

MAX_BACKFILL_DAYS = 366


def read_deployments(prefect_file: Path) -> list[dict[str, Any]]:
    if not prefect_file.is_file():
        raise ConfigError(f"{prefect_file} not found: run seqcast from the repository root")
    return yaml.safe_load(prefect_file.read_text(encoding="utf-8"))["deployments"]


def runner_deployments(prefect_file: Path, config: PipelineConfig) -> list[RunnerDeployment]:
    """The deployments of ``prefect_file`` for `prefect.serve`, with ``config`` as their
    default parameters instead of the file's."""
    deployments = []
    for spec in read_deployments(prefect_file):
        flow: Flow[..., Any] = load_flow_from_entrypoint(spec["entrypoint"])
        limit = spec.get("concurrency_limit")
        deployment = sync_result(
            flow.to_deployment(
                name=spec["name"],
                description=spec.get("description"),
                tags=spec.get("tags"),
                schedules=[
                    CronSchedule(cron=s["cron"], timezone=s["timezone"])
                    for s in spec.get("schedules") or []
                ],
                concurrency_limit=ConcurrencyLimitConfig(**limit)
                if isinstance(limit, dict)
                else limit,
                parameters={"config": config.model_dump(mode="json")},
                enforce_parameter_schema=True,
            )
        )
        deployments.append(deployment)
    return deployments


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


def backfill(
    deployment: str,
    days: list[date],
    config: PipelineConfig | None,
    force: bool,
) -> list[tuple[date, str]]:
    """Create one run of ``deployment`` per day, scheduled at that day's midnight (UTC), so
    each run's logical date is its day; return (day, flow run id) pairs.

    The runs start as soon as a worker (or `seqcast serve`) picks them up; nightly-retrain's
    concurrency limit runs them one at a time. Days already published are skipped by the
    runs themselves unless ``force``.
    """
    from prefect.deployments import run_deployment

    parameters: dict[str, Any] = {"force": force}
    if config is not None:
        parameters["config"] = config.model_dump(mode="json")
    created = []
    for day in days:
        run = sync_result(
            run_deployment(
                deployment,
                parameters=parameters,
                scheduled_time=datetime.combine(day, time(0, 0), tzinfo=UTC),
                flow_run_name=f"{deployment.split('/')[-1]}-{day.isoformat()}-backfill",
                tags=["backfill"],
                timeout=0,
                as_subflow=False,
            )
        )
        created.append((day, str(run.id)))
    return created
