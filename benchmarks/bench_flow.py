"""Figures 4 and 5: the nightly flow end to end vs the bare script, and the cache hit.

Run 1 of the nightly flow on fresh data, then the bare tutorial script on the same CSVs
with the same model, epochs and windows, then run 2 of the flow on unchanged data (its
window task must reuse run 1's windows). Prefect's ephemeral API is started before the
clock runs (a no-op flow), as a deployed flow finds its server already up; that start-up
is reported on its own. Call `configure_prefect` before importing this module's flows.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any


def configure_prefect(home: Path) -> None:
    """Prefect settings for a benchmark process: its own home, no telemetry, quiet logs."""
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def task_seconds(flow_run_id: Any) -> dict[str, float]:
    """Each task run's duration as Prefect recorded it (start to end)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> dict[str, float]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        return {
            run.name.rsplit("-", 1)[0]: (run.end_time - run.start_time).total_seconds()
            for run in runs
            if run.start_time and run.end_time
        }

    return asyncio.run(read())


def figures_4_and_5(csv_dir: Path, work: Path, epochs: int, stride: int) -> dict[str, Any]:
    from prefect import flow

    from benchmarks import bare_tutorial
    from benchmarks.common import bench_config, timed
    from flows.training import nightly_training

    @flow(name="warm-up")
    def warm_up() -> None:
        """Starts the ephemeral Prefect API."""

    with timed() as prefect_start:
        warm_up()
    config = bench_config(
        work / "fig5",
        source=f"{csv_dir}/*.csv",
        epochs=epochs,
        patience=epochs,  # never stop early: both sides run every epoch
        window={"stride": stride},
    )
    runs = []
    for number in (1, 2):
        with timed() as wall:
            state = nightly_training(config, return_state=True)
        outcome = state.result()
        tasks = task_seconds(state.state_details.flow_run_id)
        runs.append(
            {"wall_s": wall["seconds"], "tasks_s": tasks, "mae": outcome.evaluation.challenger}
        )
        if number == 1:
            with timed() as bare_time:
                bare = bare_tutorial.run(csv_dir, config)
    first, second = runs
    accounted = sum(first["tasks_s"].values())
    return {
        "prefect_api_start_s": prefect_start["seconds"],
        "flow_run_1": first,
        "flow_run_2": second,
        "bare": {"wall_s": bare_time["seconds"], **bare},
        "figure_5_ratio": first["wall_s"] / bare_time["seconds"],
        "figure_5_target": "<= 1.15",
        "orchestration_s": first["wall_s"] - accounted,
        "figure_4_ratio": second["tasks_s"]["window"] / first["tasks_s"]["window"],
        "figure_4_target": "<= 0.05",
    }
