"""What a run leaves in Prefect for the operator (issue 14 #1, #3, #7): the library's INFO
lines in the run log (one per epoch), names with the logical date, readable lines."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import LogSort
from prefect.flow_engine import run_flow
from prefect.states import Scheduled

from flows.names import run_name
from flows.training import nightly_training
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow


def run_log(flow_run_id: Any) -> list[str]:
    """Every line of a flow run's log, its tasks' and its subflows' included, read through
    the API."""

    async def read() -> list[str]:
        async with get_client() as client:
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
                )
            )
            ids = [flow_run_id, *(child.id for child in children)]
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                sort=LogSort.TIMESTAMP_ASC,
            )
        return [log.message for log in logs]

    return asyncio.run(read())


def flow_run(flow_run_id: Any) -> FlowRun:
    async def read() -> FlowRun:
        async with get_client() as client:
            return await client.read_flow_run(flow_run_id)

    return asyncio.run(read())


def test_epoch_losses_reach_the_run_log(tiny_load_csv: Path, tmp_path: Path) -> None:
    # Prefect 3.9 gave the `seqcast` logger its API handler but left it at WARNING: no
    # epoch, no snapshot reuse, no cleanup line ever reached the run log.
    config = tiny_config(
        tiny_load_csv,
        tmp_path / "root",
        model__epochs=2,
        model__units=[4],
        window__normalize="series",
    )
    state = nightly_training(config, return_state=True)
    assert state.is_completed()
    flow_run_id = state.state_details.flow_run_id
    # Prefect ships log lines to the API in batches from a background worker: poll until
    # the epochs arrive (a generous limit for a loaded machine; it returns on arrival).
    deadline = time.monotonic() + 120
    while True:
        lines = run_log(flow_run_id)
        epochs = [line for line in lines if line.startswith("epoch ")]
        if len(epochs) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"], lines
    assert "val_loss=" in epochs[0]
    # Lines that read as words (issue 14 #7), and no advice to run what is running.
    written = next(line for line in lines if line.startswith("Windows written"))
    assert " train, " in written and " windows" in written and "{" not in written
    assert not [line for line in lines if "seqcast train` first" in line]
    today = datetime.now(UTC).date().isoformat()
    assert flow_run(flow_run_id).name == f"train-tiny-{today}-manual"


@flow(flow_run_name=run_name("train"))
def named(config: dict[str, str]) -> str:
    """A flow named like the pipeline's; cheap to run."""
    return "done"


def test_run_names_carry_the_date_and_keep_a_backfills_name() -> None:
    config = {"name": "tiny"}
    direct = named(config, return_state=True)
    today = datetime.now(UTC).date().isoformat()
    assert flow_run(direct.state_details.flow_run_id).name == f"train-tiny-{today}-manual"

    def started(name: str | None, day: date) -> str:
        """A run created as `seqcast backfill` creates them, then started as a worker would."""

        async def create() -> FlowRun:
            async with get_client() as client:
                return await client.create_flow_run(
                    named,
                    name=name,
                    parameters={"config": config},
                    tags=["backfill"],
                    state=Scheduled(
                        scheduled_time=datetime(day.year, day.month, day.day, tzinfo=UTC)
                    ),
                )

        created = asyncio.run(create())
        run_flow(named, flow_run=created, parameters={"config": config})
        return flow_run(created.id).name

    # The backfill's own name stays; an unnamed backfill run gets the pipeline's name.
    assert started("nightly-retrain-2026-01-03-backfill", date(2026, 1, 3)) == (
        "nightly-retrain-2026-01-03-backfill"
    )
    assert started(None, date(2026, 1, 4)) == "train-tiny-2026-01-04-backfill"
