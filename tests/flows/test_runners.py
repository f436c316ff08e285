"""The sharded steps give the same windows and predictions on threads and on a Dask cluster."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from flows.prediction import batch_predict
from flows.runners import RESULTS_FOLDER, all_results, on_runner, run_sharded, task_runner
from flows.search import search_models
from flows.sharded import fit_challenger_groups, ingest_source, validate_shards, window_shards
from flows.training import nightly_training
from seqcast.config import PipelineConfig, RunnerSpec
from seqcast.data.snapshot_parts import WORK
from seqcast.io import storage
from seqcast.modeling.challengers import fit_challengers
from seqcast.windows import store as window_store
from seqcast.windows.store import read_manifest
from tasks.ingest import ingest
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow

DASK = {
    "kind": "dask",
    "n_workers": 2,
    "threads_per_worker": 1,
    "series_per_shard": 1,
    "validation_rows": 1,  # each series a validation shard of its own
}
THREAD = {"kind": "thread", "n_workers": 1, "series_per_shard": 1}


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    """One local cluster of `DASK`'s shape for the module's runs on a scheduler address.

    Each local cluster a run starts costs seconds (its worker processes import the
    pipeline, then TensorFlow, anew); the local-cluster path (no ``address``) is run once,
    by the window step of the first test.
    """
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=DASK["n_workers"],
        threads_per_worker=DASK["threads_per_worker"],
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
    ) as cluster:
        yield cluster.scheduler_address


def small(source: Path, root: Path, runner: dict) -> PipelineConfig:
    """Three series in three shards; one model variant (normalize=series), a few seconds."""
    return tiny_config(source, root, runner=runner, model__epochs=3, window__normalize="series")


def test_runner_spec_picks_the_task_runner() -> None:
    local = task_runner(RunnerSpec(kind="dask", n_workers=3))
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["n_workers"] == 3 and local.cluster_kwargs["processes"]
    remote = task_runner(RunnerSpec(kind="dask", address="tcp://scheduler:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://scheduler:8786"
    with pytest.raises(ValueError, match="needs kind=dask"):
        RunnerSpec(kind="thread", address="tcp://scheduler:8786")


def test_a_failed_mapped_task_is_raised_only_once_the_others_finished() -> None:
    """The subflows clean up their work folder after a failure: no task may still write.

    (Prefect 3.9's ``futures.result()`` raised while the others ran: CI once saw a part's
    temporary file renamed away under the cleanup's ``rm``.)
    """
    finished: list[int] = []

    @task
    def shard(i: int) -> int:
        if i == 0:
            raise ValueError("shard 0 is bad")
        time.sleep(1.0)
        finished.append(i)
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def mapped() -> list[int]:
        try:
            return all_results(shard.map([0, 1, 2]))
        except ValueError:
            return sorted(finished)  # what a cleanup here would race with

    assert mapped() == [1, 2]


def test_thread_and_dask_runners_write_identical_windows_and_predictions(
    tiny_load_csv: Path, tmp_path: Path, dask_address: str
) -> None:
    threads = small(tiny_load_csv, tmp_path / "threads", THREAD)
    dask = small(tiny_load_csv, tmp_path / "dask", DASK)
    on_threads = nightly_training(threads)
    # The training flow's ingest on Dask: three files, so one task per file on the module's
    # cluster (the parts' work folder), the snapshot the serial task wrote on threads.
    on_cluster = RunnerSpec(**DASK, address=dask_address)
    snapshot = ingest_source(dask.model_copy(update={"runner": on_cluster}))
    assert (Path(dask.pipeline_root) / WORK).is_dir()
    assert not (Path(threads.pipeline_root) / WORK).exists()
    (serial,) = (Path(threads.pipeline_root) / "raw").glob("*/data.parquet")
    assert len(snapshot.files) == 3 and Path(snapshot.uri).read_bytes() == serial.read_bytes()
    # Its validate and window steps, alone (the flow calls them so), on a local Dask
    # cluster: three validation shards give the table one shard gave on threads.
    validated = run_sharded(validate_shards, dask, snapshot)
    on_dask = run_sharded(window_shards, dask, validated)
    (by_one_shard,) = (Path(threads.pipeline_root) / "validated").glob("*/data.parquet")
    pd.testing.assert_frame_equal(
        pd.read_parquet(validated.uri), pd.read_parquet(by_one_shard), check_exact=True
    )

    # Windows: every file of the two builds has the same bytes (the manifest's sha256).
    thread_windows = read_manifest(_windows_uri(threads))
    dask_windows = read_manifest(_windows_uri(dask))
    assert len({b["part"] for b in dask_windows["blocks"]}) == 3  # one part per shard
    assert {n: f["sha256"] for n, f in dask_windows["files"].items()} == {
        n: f["sha256"] for n, f in thread_windows["files"].items()
    }
    assert dask_windows["counts"] == thread_windows["counts"] == on_dask.rows_by_split
    assert on_threads.version.champion is not None  # the network or a statistical winner

    # Predictions: one champion, predicted on threads and then on Dask (a forced rerun), on
    # the module's cluster.
    first = batch_predict(threads)
    by_threads = pd.read_parquet(first.uri).drop(columns="flow_run_id")
    on_dask_runner = threads.model_copy(update={"runner": on_cluster})
    second = batch_predict(on_dask_runner, force=True)
    by_dask = pd.read_parquet(second.uri).drop(columns="flow_run_id")
    assert second.rows == first.rows == 3 * threads.window.horizon
    pd.testing.assert_frame_equal(by_dask, by_threads, check_exact=True)
    staged = [p.name for p in (Path(threads.pipeline_root) / "predictions").iterdir()]
    assert not [name for name in staged if name.startswith(".staging-")]

    # The Dask runs persisted their task results where every worker can read them.
    results = Path(dask.data_root) / RESULTS_FOLDER
    assert results.is_dir() and any(results.iterdir())


def _windows_uri(config: PipelineConfig) -> str:
    current = Path(config.pipeline_root) / "windows" / "current.json"
    pointer = json.loads(current.read_text())
    return str(current.parent / pointer["build"])


def test_search_trials_run_on_dask_workers_as_on_threads(
    tiny_load_csv: Path, tmp_path: Path, dask_address: str
) -> None:
    searched = {"epochs": 1, "units": [4], "search": {"enabled": True, "trials": 2}}
    threads = tiny_config(
        tiny_load_csv,
        tmp_path / "threads",
        runner=THREAD,
        model=searched,
        window__normalize="series",
    )
    dask = threads.model_copy(
        update={
            "runner": RunnerSpec(**DASK, address=dask_address),
            "data_root": str(tmp_path / "dask"),
        }
    )
    # One window build (on threads) for both searches: the window step on Dask is the
    # first test's, and the same windows make "same data" exact.
    validated = run_sharded(validate_shards, threads, ingest(threads))
    windows = run_sharded(window_shards, threads, validated)
    trained = {
        name: run_sharded(search_models, config, windows, f"run-{name}")
        for name, config in (("threads", threads), ("dask", dask))
    }
    for ref in trained.values():
        assert ref.search is not None and ref.search["trials"] == 2
        assert Path(ref.model_uri).is_file()
    # Same seed and data: the same trials proposed, whichever runner trained them.
    on_threads, on_dask = (
        json.loads((Path(ref.model_uri).parent / "search.json").read_text())["table"]
        for ref in (trained["threads"], trained["dask"])
    )
    outcome = {"seconds", "chosen", "best_val_loss", "epochs", "pruned", "stopped"}
    proposed = [{k: v for k, v in row.items() if k not in outcome} for row in on_threads]
    assert [{k: row[k] for k in proposed[0]} for row in on_dask] == proposed


def task_run_names(flow_run_id: object, expected: int) -> list[str]:
    """The names of a flow run's task runs, once the server recorded ``expected`` of them
    (they arrive as events, asynchronously; a generous limit, not a timing assertion)."""

    async def read() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        return sorted(run.name for run in runs)

    deadline = time.monotonic() + 60
    names = asyncio.run(read())
    while len(names) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        names = asyncio.run(read())
    return names


def test_challengers_fit_per_block_on_threads_and_dask_as_in_one_serial_fit(
    tiny_load_csv: Path, tmp_path: Path, dask_address: str
) -> None:
    threads = {"kind": "thread", "n_workers": 2, "series_per_shard": 1}
    # The season from the frequency (hourly: 24), as a config that names none gets it.
    config = tiny_config(
        tiny_load_csv,
        tmp_path / "root",
        runner=threads,
        evaluate__season=None,
        evaluate__challengers=["ets", "ar"],
    )
    validated = run_sharded(validate_shards, config, ingest(config))
    windows = run_sharded(window_shards, config, validated)
    # Three series in shards of one (`series_per_shard`): three parts, a block each.
    layout, scaler = window_store.read_layout(windows.uri), window_store.read_scaler(windows.uri)
    assert len(window_store.read_manifest(windows.uri)["blocks"]) == 3
    fits = fit_challengers(windows.uri, layout, scaler, 24)
    serial = storage.json_bytes(
        {
            "season": 24,
            "fits": {s: {c: f.to_json() for c, f in by.items()} for s, by in fits.ets.items()},
            "ar_fits": {s: {c: f.to_json() for c, f in by.items()} for s, by in fits.ar.items()},
        }
    )
    state = on_runner(fit_challenger_groups, config)(
        config, windows, "run-threads", return_state=True
    )
    on_threads = state.result()
    names = task_run_names(state.state_details.flow_run_id, 5)
    groups = [f"fit-challengers-group-{i}" for i in range(3)]
    assert names[:3] == groups  # one mapped task per block
    assert [n.rsplit("-", 1)[0] for n in names[3:]] == [
        "fit-challengers-merge",
        "fit-challengers-plan",
    ]
    assert on_threads.series == 3 and on_threads.seconds > 0
    runs = Path(config.pipeline_root) / "runs"
    assert on_threads.uri == str(runs / "run-threads" / "challengers.json")
    assert Path(on_threads.uri).read_bytes() == serial
    assert not (runs / "run-threads" / "challengers").exists()  # parts removed once merged
    # The same store's fits on Dask workers: the same bytes.
    on_cluster = config.model_copy(update={"runner": RunnerSpec(**DASK, address=dask_address)})
    on_dask = run_sharded(fit_challenger_groups, on_cluster, windows, "run-dask")
    assert Path(on_dask.uri).read_bytes() == serial
