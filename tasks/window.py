"""Step 3, window: split, scale and index the validated table's windows, shard by shard.

The steps of `seqcast.windows.step` as tasks: one start and one publish task around two
tasks mapped over the shards (fit, then write), so a Dask runner spreads them over workers.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig, series_column
from seqcast.records import ShardRef, ValidatedRef, WindowBuildRef, WindowsRef
from seqcast.windows import store as window_store
from seqcast.windows.series_source import ParquetSeries, column_roles
from seqcast.windows.step import (
    abandon_build,
    build_inputs,
    fit_shard,
    plan_build,
    publish_build,
    start_build,
    write_shard,
)
from tasks.common import STEP_OPTIONS


def _source(config: PipelineConfig, validated: ValidatedRef) -> ParquetSeries:
    return ParquetSeries(validated.uri, column_roles(config, series_column(config.source)))


@task(name="window-start", **STEP_OPTIONS)
def start_windows(config: PipelineConfig, validated: ValidatedRef) -> WindowBuildRef:
    """Reuse the windows for this data, spec and code, or begin a build and cut its shards."""
    build = start_build(config, _source(config, validated), validated.fingerprint)
    logger = get_run_logger()
    if build.reused:
        logger.info("Windows for this data, spec and code exist: reusing %s", build.uri)
    else:
        logger.info("Building windows in %s: %d shard(s)", build.uri, len(build.shards))
    return build


@task(name="window-fit", **STEP_OPTIONS)
def fit_windows(
    config: PipelineConfig, validated: ValidatedRef, build: WindowBuildRef, shard: ShardRef
) -> str:
    """Measure one shard's train-row statistics (the scaler's inputs)."""
    source = _source(config, validated)
    return fit_shard(config, source, series_column(config.source), build.uri, shard)


@task(name="window-plan", **STEP_OPTIONS)
def plan_windows(config: PipelineConfig, build: WindowBuildRef, fits: list[str]) -> str:
    """Merge the shards' statistics into the scaler and the layout every shard writes with."""
    plan_build(config, series_column(config.source), build.uri, build.shards)
    return build.uri


@task(name="window-write", **STEP_OPTIONS)
def write_windows(
    config: PipelineConfig,
    validated: ValidatedRef,
    build: WindowBuildRef,
    shard: ShardRef,
    plan: str,
) -> list[dict[str, Any]]:
    """Write one shard's windows as its part of the build; return its block summaries."""
    return write_shard(config, _source(config, validated), build.uri, shard)


@task(name="window-publish", **STEP_OPTIONS)
def publish_windows(
    config: PipelineConfig,
    validated: ValidatedRef,
    build: WindowBuildRef,
    written: list[list[dict[str, Any]]],
) -> WindowsRef:
    """Checksum the build and publish it: the one commit point of the window step."""
    inputs = build_inputs(config, validated.uri, validated.fingerprint)
    counts = publish_build(config, build, inputs, written)
    get_run_logger().info("Windows written to %s: %s", build.uri, window_counts(counts))
    return windows_ref(build)


def windows_ref(build: WindowBuildRef) -> WindowsRef:
    """The reference the training steps read, from a published build."""
    layout = window_store.read_layout(build.uri)
    return WindowsRef(
        uri=build.uri,
        fingerprint=build.key,
        rows_by_split=window_store.read_manifest(build.uri)["counts"],
        n_inputs=len(layout.input_columns),
        n_outputs=len(layout.classes) or layout.horizon * len(layout.target_columns),
        classes=layout.classes,
    )


@task(name="window-abandon")
def abandon_windows(config: PipelineConfig, build: WindowBuildRef) -> None:
    """Remove the unpublished build of a failed window step."""
    abandon_build(config, build)


def window_counts(counts: dict[str, int]) -> str:
    """``{'train': 3480, 'val': 448}`` as words for the log: ``3,480 train and 448 val
    windows``."""
    parts = [f"{n:,} {split}" for split, n in counts.items()]
    if not parts:
        return "no windows"
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{listed} windows"
