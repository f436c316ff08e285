"""The task runner of the sharded steps, chosen from the config at run time.

A flow's task runner is fixed where the flow is defined, and a deployment imports the
flow object from its entrypoint; so the sharded steps are subflows that each run picks a
runner for: ``run_sharded(window_shards, config, validated)``.

Dask workers are other processes: they report their task runs to the flow's Prefect API.
Where that is the ephemeral one this process started (no ``PREFECT_API_URL``: the CLI,
tests), its address is handed to them, else each worker would start a server of its own.
Workers on other machines need a real server (``PREFECT_API_URL``), as deployments have.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Flow
from prefect.filesystems import RemoteFileSystem, WritableFileSystem
from prefect.futures import PrefectFutureList, wait
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from seqcast.config import PipelineConfig, RunnerSpec
from seqcast.io import storage

P = ParamSpec("P")
R = TypeVar("R")

RESULTS_FOLDER = ".prefect-results"
"""Task results of distributed runs, under the data root: every worker reaches it."""


def all_results(futures: PrefectFutureList[R]) -> list[R]:
    """The mapped tasks' results in order, once every one of them has finished.

    Prefect 3.9's ``futures.result()`` raises the first failure as soon as it happens,
    while the other tasks still run; the subflows then abandon their work folder, and a
    task still writing a part there raced the removal (a CI failure: a part's temporary
    file renamed away under ``rm``). Waiting first means cleanup starts only when nothing
    writes any more; the first failure (in completion order) is still what is raised.
    """
    wait(futures)
    return futures.result()


def task_runner(spec: RunnerSpec) -> TaskRunner[Any]:
    """Threads of this process, a Dask cluster at ``spec.address``, or a local one."""
    if spec.kind == "thread":
        return ThreadPoolTaskRunner(max_workers=spec.n_workers)
    from prefect_dask import DaskTaskRunner  # imported only where Dask is asked for

    if spec.address:
        return DaskTaskRunner(address=spec.address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": spec.n_workers,
            "threads_per_worker": spec.threads_per_worker,
            "processes": True,
            "dashboard_address": None,
            # The scheduler's HTTP routes (/metrics, /health) bind even without a dashboard,
            # on 8787 unless told otherwise: a free port, so two runs or a user's own Dask
            # dashboard never collide (a busy 8787 made the cluster fail to start).
            "scheduler_kwargs": {"dashboard_address": ":0"},
        }
    )


def result_storage(config: PipelineConfig) -> Path | WritableFileSystem:
    """``{data_root}/.prefect-results``: where a retry on another worker finds results.

    A local root is passed as a path; a URL root as a `RemoteFileSystem` block saved under
    a name derived from the URL (Prefect wants result storage blocks saved server-side).
    """
    uri = storage.join(config.data_root, RESULTS_FOLDER)
    fs, path = storage.filesystem(uri)
    if storage.is_local(fs):
        return Path(path).resolve()
    block = RemoteFileSystem(basepath=uri)
    block.save(f"seqcast-results-{hashlib.sha256(uri.encode()).hexdigest()[:12]}", overwrite=True)
    return block


@contextmanager
def _api_for_workers(spec: RunnerSpec) -> Iterator[None]:
    """Point Dask workers at this process's ephemeral Prefect API, if that is the one used."""
    if spec.kind != "dask" or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the process's one ephemeral server
    server.start()  # a no-op once running
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


def run_sharded(subflow: Flow[..., R], config: PipelineConfig, *args: Any) -> R:
    """Run ``subflow(config, *args)`` on the task runner ``config.runner`` names.

    Without a heartbeat of its own: Prefect joins a flow run's heartbeat thread at exit,
    which sleeps in 1 s steps, so each subflow would end up to a second late; the subflow
    runs in its parent's process, whose heartbeat already tells a crash.
    """
    with _api_for_workers(config.runner), _no_heartbeat():
        return on_runner(subflow, config)(config, *args)


@contextmanager
def _no_heartbeat() -> Iterator[None]:
    """Heartbeats off for the block; nothing to do when they are off already (the CLI's
    runs): `temporary_settings` rebuilds Prefect's settings, 30 ms per subflow."""
    if PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def on_runner(subflow: Flow[P, R], config: PipelineConfig) -> Flow[P, R]:
    """``subflow`` with the task runner ``config.runner`` names.

    On Dask, task results persist to the shared result storage, since the tasks run in
    other processes (or machines) than the flow.
    """
    if config.runner.kind == "thread":
        return cast(Flow[P, R], _on_threads(subflow, config.runner.n_workers))
    return subflow.with_options(
        task_runner=task_runner(config.runner),
        persist_result=True,
        result_storage=result_storage(config),
    )


@functools.cache
def _on_threads(subflow: Flow[..., Any], n_workers: int) -> Flow[..., Any]:
    """``subflow`` on a pool of ``n_workers`` threads, made once per process: Prefect's
    ``with_options`` builds a new flow, and with it the JSON schema of its parameters
    (a `PipelineConfig`'s: 13 ms, issue 14 #5). Each run takes a fresh copy of the
    runner (Prefect's ``task_runner.duplicate()``), so runs never share the pool."""
    return subflow.with_options(task_runner=task_runner(RunnerSpec(n_workers=n_workers)))
