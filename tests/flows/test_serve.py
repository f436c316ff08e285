"""Issue 14 #4: `seqcast serve` on a server where `seqcast deploy` already made the
worker-based deployments leaves them alone, and makes the training limit as deploy does.

Before, serve updated the deployments of the same names: their pull steps became None,
their work pool stayed, so the pool's workers crashed on every run, and stopping serve
paused them. Checked on the harness server with the function serve calls before serving
(`serving.prepare`) and the `apply` the runner does for each deployment at start-up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectNotFound
from prefect.flows import load_flow_from_entrypoint

from flows.cli import server_setup, serving
from seqcast.config import PipelineConfig
from seqcast.errors import ConfigError
from tasks.common import TRAINING_TAG

pytestmark = pytest.mark.flow

REPO = Path(__file__).resolve().parents[2]
POOL = "seqcast-serve-test"
PULL_STEPS = [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncPrefectClient]:
    """The harness server, from the repository root (entrypoints are relative to it); the
    training limit a test makes is removed after it, so no later flow test waits on it."""
    monkeypatch.chdir(REPO)
    with get_client(sync_client=True) as api:
        with suppress(ObjectNotFound):
            api.delete_concurrency_limit_by_tag(TRAINING_TAG)
        yield api
        with suppress(ObjectNotFound):
            api.delete_concurrency_limit_by_tag(TRAINING_TAG)


@pytest.fixture
def prefect_file(tmp_path: Path) -> Path:
    """deploy/prefect.yaml with names of this test's own (the harness is shared)."""
    document = yaml.safe_load((REPO / "deploy" / "prefect.yaml").read_text())
    token = uuid.uuid4().hex[:8]
    for spec in document["deployments"]:
        spec["name"] = f"{spec['name']}-{token}"
        spec["work_pool"]["name"] = POOL
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def deploy_like_seqcast_deploy(
    client: SyncPrefectClient, prefect_file: Path, suffix: str = ""
) -> dict[str, UUID]:
    """The deployments of ``prefect_file`` (named ``{name}{suffix}``) as `prefect deploy`
    makes them: in a process pool, with pull steps, scheduled. Returns {FLOW/NAME: id}."""
    server_setup.ensure_work_pool(client, POOL)
    made = {}
    for spec in yaml.safe_load(prefect_file.read_text())["deployments"]:
        flow = load_flow_from_entrypoint(spec["entrypoint"])
        name = f"{spec['name']}{suffix}"
        made[f"{flow.name}/{name}"] = client.create_deployment(
            flow_id=client.create_flow_from_name(flow.name),
            name=name,
            entrypoint=spec["entrypoint"],
            work_pool_name=POOL,
            work_queue_name="default",
            pull_steps=PULL_STEPS,
            schedules=[
                DeploymentScheduleCreate(
                    schedule=CronSchedule(cron=s["cron"], timezone=s["timezone"])
                )
                for s in spec["schedules"]
            ],
        )
    return made


def served_config() -> PipelineConfig:
    return PipelineConfig.model_validate(
        {"name": "served", "source": {"path": "/data/x.csv", "target": ["y"]}}
    )


def test_serve_leaves_the_worker_deployments_alone_and_makes_the_training_limit(
    client: SyncPrefectClient, prefect_file: Path
) -> None:
    workers = deploy_like_seqcast_deploy(client, prefect_file)
    assert len(workers) == 2

    plan = serving.prepare(client, prefect_file, served_config(), training_limit=None)
    assert client.read_concurrency_limit_by_tag(TRAINING_TAG).concurrency_limit == 1
    assert plan.training_limit == 1
    assert sorted(plan.also_scheduled) == sorted(workers)  # both would fire: serve warns
    for deployment in plan.deployments:
        assert deployment.name.endswith("-serve")
        deployment.apply()  # what the runner does with each at start-up

    for full_name, deployment_id in workers.items():
        worker = client.read_deployment_by_name(full_name)
        assert worker.id == deployment_id
        assert (worker.work_pool_name, worker.pull_steps) == (POOL, PULL_STEPS)
        assert not worker.paused and worker.parameters == {}
        served = client.read_deployment_by_name(f"{full_name}-serve")
        assert served.id != deployment_id and served.work_pool_name is None
        assert served.parameters["config"]["name"] == "served"
        assert [s.schedule for s in served.schedules] == [s.schedule for s in worker.schedules]


def test_serve_keeps_the_servers_training_limit_unless_told(
    client: SyncPrefectClient, prefect_file: Path
) -> None:
    server_setup.ensure_training_limit(client, 3)  # `seqcast deploy --training-limit 3`
    plan = serving.prepare(client, prefect_file, served_config(), training_limit=None)
    assert plan.training_limit == 3 and plan.also_scheduled == []
    plan = serving.prepare(client, prefect_file, served_config(), training_limit=2)
    assert client.read_concurrency_limit_by_tag(TRAINING_TAG).concurrency_limit == 2


def test_serve_refuses_a_name_a_work_pool_holds(
    client: SyncPrefectClient, prefect_file: Path
) -> None:
    """A prefect file that deploys the served names to a pool: serving would break it."""
    made = deploy_like_seqcast_deploy(client, prefect_file, serving.SERVED_SUFFIX)
    taken = next(iter(made))  # nightly-retrain's: the first one checked
    with pytest.raises(ConfigError, match=f"deployment '{taken}' .* work pool '{POOL}'"):
        serving.prepare(client, prefect_file, served_config(), training_limit=None)
    with pytest.raises(ObjectNotFound):  # refused before anything was made
        client.read_concurrency_limit_by_tag(TRAINING_TAG)
    assert client.read_deployment_by_name(taken).pull_steps == PULL_STEPS
