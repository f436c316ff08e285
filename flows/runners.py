"""The task runner of the sharded steps, chosen from the config at run time.

A flow's task runner is fixed where the flow is defined, and a deployment imports the
flow object from its entrypoint; so the sharded steps are subflows that each run picks a
runner for: ``on_runner(window_shards, config)(config, validated)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.filesystems import RemoteFileSystem, WritableFileSystem
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from seqcast import storage
from seqcast.config import PipelineConfig, RunnerSpec

RESULTS_FOLDER = ".prefect-results"
"""Task results of distributed runs, under the data root: every worker reaches it."""


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


def on_runner(subflow: Flow[Any, Any], config: PipelineConfig) -> Flow[Any, Any]:
    """``subflow`` with the task runner ``config.runner`` names.

    On Dask, task results persist to the shared result storage, since the tasks run in
    other processes (or machines) than the flow.
    """
    options: dict[str, Any] = {"task_runner": task_runner(config.runner)}
    if config.runner.kind == "dask":
        options.update(persist_result=True, result_storage=result_storage(config))
    return subflow.with_options(**options)
