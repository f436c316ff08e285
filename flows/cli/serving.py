"""The deployments `seqcast serve` runs from its own process, beside `seqcast deploy`'s.

`seqcast deploy` makes worker-based deployments: ``training/nightly-retrain`` and
``batch-predict/batch-predict`` in the ``seqcast`` work pool, with the pull steps that tell a
worker where the code is. `prefect.serve` creates or *updates* deployments by name; under
those names it replaced the pull steps with none but kept the pool, so the pool's workers
crashed on every run (``FileNotFoundError: .../None``), and stopping serve paused them.

So served deployments have names of their own (`SERVED_SUFFIX`: ``nightly-retrain-serve``),
built from the same ``deploy/prefect.yaml`` (schedules, concurrency, tags), and serve
refuses a name that a work pool's deployment already holds. It also makes the task
concurrency limit of the training tag, as `seqcast deploy` does, so served and worker runs
never train at once on one server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.flows import Flow, load_flow_from_entrypoint

from flows.cli.scheduling import read_deployments
from flows.cli.server_setup import ensure_training_limit
from seqcast.config import PipelineConfig
from seqcast.errors import ConfigError
from tasks.common import sync_result

SERVED_SUFFIX = "-serve"
"""Appended to the name of each deployment of ``prefect.yaml`` that `seqcast serve` runs."""


def served_name(name: str) -> str:
    """The name `seqcast serve` gives the deployment ``name`` of ``prefect.yaml``."""
    return f"{name}{SERVED_SUFFIX}"


def runner_deployments(prefect_file: Path, config: PipelineConfig) -> list[RunnerDeployment]:
    """The deployments of ``prefect_file`` for `prefect.serve`, under their served names
    (`served_name`), with ``config`` as their default parameters instead of the file's."""
    deployments = []
    for spec in read_deployments(prefect_file):
        flow: Flow[..., Any] = load_flow_from_entrypoint(spec["entrypoint"])
        limit = spec.get("concurrency_limit")
        deployment = sync_result(
            flow.to_deployment(
                name=served_name(spec["name"]),
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


def refuse_worker_deployments(
    client: SyncPrefectClient, deployments: list[RunnerDeployment]
) -> None:
    """Raise if a deployment of one of these names exists with a work pool: serving it
    would take it from the pool's workers and break their runs."""
    for deployment in deployments:
        try:
            existing = client.read_deployment_by_name(deployment.full_name)
        except ObjectNotFound:
            continue
        if existing.work_pool_name:
            raise ConfigError(
                f"deployment {deployment.full_name!r} on {client.api_url} belongs to work pool "
                f"{existing.work_pool_name!r}: `seqcast serve` would replace it with one its "
                "workers cannot run. Delete it (`prefect deployment delete "
                f"{deployment.full_name}`) to serve it from this process, or rename the "
                "deployment in the prefect file."
            )


def scheduled_worker_deployments(client: SyncPrefectClient, prefect_file: Path) -> list[str]:
    """The deployments of ``prefect_file`` that `seqcast deploy` put on the server with a
    work pool and that are not paused: their schedules fire beside the served ones."""
    active = []
    for spec in read_deployments(prefect_file):
        flow: Flow[..., Any] = load_flow_from_entrypoint(spec["entrypoint"])
        full_name = f"{flow.name}/{spec['name']}"
        try:
            existing = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            continue
        if existing.work_pool_name and not existing.paused and existing.schedules:
            active.append(full_name)
    return active


@dataclass(frozen=True)
class ServePlan:
    """What `seqcast serve` runs, and what the server already had."""

    deployments: list[RunnerDeployment]
    training_limit: int
    also_scheduled: list[str]
    """Worker deployments of the same flows whose schedules are active on the server."""


def prepare(
    client: SyncPrefectClient,
    prefect_file: Path,
    config: PipelineConfig,
    training_limit: int | None,
) -> ServePlan:
    """Check the server and make what serving needs, before anything is served: the
    deployments to serve (refused if a work pool holds one of their names) and the
    training limit."""
    deployments = runner_deployments(prefect_file, config)
    refuse_worker_deployments(client, deployments)
    limit = ensure_training_limit(client, training_limit)
    return ServePlan(deployments, limit, scheduled_worker_deployments(client, prefect_file))
