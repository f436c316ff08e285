"""The window step, shard by shard: reuse the published build or write a new one.

A new build runs the passes of `seqcast.windows.build` as steps over a build directory, so
an orchestrator can run the per-shard steps in parallel, on other processes or machines:

1. `start_build`: the cache key; the published build if there is one, else a fresh
   directory, a survey of the series and their shards (contiguous row ranges of
   ``runner.series_per_shard`` series of the sorted validated table);
2. `fit_shard` (per shard): each series' train-row moments, to ``_shards/fit-{k}.json``;
3. `plan_build`: the fits merged in shard order into the scaler and layout;
4. `write_shard` (per shard): the shard's windows as part ``k`` of the store;
5. `publish_build`: the work files removed, the manifest checksummed, the pointer swapped.

Shards come from the data and the config only, and every step writes deterministic
names, so a build is the same whichever runner ran the steps, and a retried step simply
rewrites its own files. `build_or_reuse` runs the steps one after another in-process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from seqcast.config import PipelineConfig
from seqcast.io import storage
from seqcast.records import ShardRef, WindowBuildRef
from seqcast.windows.build import (
    SeriesFit,
    Survey,
    WindowPlan,
    fit_series,
    merge_fits,
    require_every_split,
    survey,
    write_part,
)
from seqcast.windows.grid import GridStep
from seqcast.windows.publish import WindowStore, code_version, ensure_windows, windows_fingerprint
from seqcast.windows.series_source import ParquetSeries, column_roles, make_shards
from seqcast.windows.store import read_layout, read_manifest, read_scaler, write_plan
from seqcast.windows.windowing import SPLITS

logger = logging.getLogger(__name__)

WORK = "_shards"
"""Work files of a build in progress (survey, fits); removed before it is published."""


def window_settings(config: PipelineConfig) -> dict[str, Any]:
    """Every setting that shapes the windows: part of their cache key.

    The shard size is not: it changes how the windows are split into files, not the
    windows, so a build made with another shard size is reused.
    """
    return {
        "task": config.task,
        "source": config.source.data_settings(),
        "window": config.window.model_dump(),
        "split": config.split.model_dump(mode="json"),
        "normalize": config.normalize,
    }


def _store(config: PipelineConfig) -> WindowStore:
    """The pipeline's window store, ``{pipeline_root}/windows``."""
    return WindowStore(storage.join(config.pipeline_root, "windows"))


def _work(uri: str, name: str) -> str:
    return storage.join(uri, WORK, name)


def _read_survey(uri: str) -> Survey:
    data = storage.read_json(_work(uri, "survey.json"))
    step = GridStep.from_json(data["step"])
    return Survey([], [], step, data["series_split"], data.get("time_unit"), data.get("length"))


def _shard_source(source: ParquetSeries, shard: ShardRef) -> ParquetSeries:
    return source.rows(shard.first_row, shard.rows)


def survey_shards(source: ParquetSeries, config: PipelineConfig, uri: str) -> list[ShardRef]:
    """Pass 1 into the build's work files (step and split of the whole table); the shards."""
    surveyed = survey(source, config)
    storage.write_json(
        _work(uri, "survey.json"),
        {
            "step": surveyed.step.to_json(),
            "series_split": surveyed.series_split,
            "time_unit": surveyed.time_unit,
            "length": surveyed.length,
        },
    )
    return make_shards(surveyed.rows, config.runner.series_per_shard)


def start_build(
    config: PipelineConfig,
    source: ParquetSeries,
    data_fingerprint: str,
    code: str | None = None,
) -> WindowBuildRef:
    """Step 1: the published build for these inputs, or a fresh one surveyed into shards.

    Leftovers of dead writers are removed first. The survey (step and split of the whole
    table) goes to the build's work files, where the shard steps read it.
    """
    key = windows_fingerprint(data_fingerprint, window_settings(config), code or code_version())
    store = _store(config)
    store.clean()
    found = store.lookup(key)
    if found is not None:
        store.mark_current(key)
        return WindowBuildRef(uri=found, key=key, reused=True)
    uri = store.begin(key)
    try:
        shards = survey_shards(source, config, uri)
    except BaseException:
        store.abandon(uri)
        raise
    return WindowBuildRef(uri=uri, key=key, reused=False, shards=shards)


def fit_shard(
    config: PipelineConfig, source: ParquetSeries, series_column: str, uri: str, shard: ShardRef
) -> str:
    """Step 2, one shard: its series' train-row moments, written to the build's work files.

    Returns:
        The URI of the shard's fit file.
    """
    found = _read_survey(uri)
    fits = fit_series(
        _shard_source(source, shard),
        config,
        series_column,
        found.step,
        found.series_split,
        found.length,
    )
    out = _work(uri, f"fit-{shard.number:05d}.json")
    storage.write_json(out, [fit.to_json() for fit in fits])
    return out


def plan_build(
    config: PipelineConfig, series_column: str, uri: str, shards: list[ShardRef]
) -> None:
    """Step 3: merge the shards' fits in shard order; write the scaler and the layout."""
    found = _read_survey(uri)
    fits = (
        SeriesFit.from_json(item)
        for shard in sorted(shards, key=lambda s: s.number)
        for item in storage.read_json(_work(uri, f"fit-{shard.number:05d}.json"))
    )
    plan = merge_fits(fits, config, series_column, found)
    write_plan(uri, plan.layout, plan.scaler)


def _read_plan(uri: str) -> WindowPlan:
    found = _read_survey(uri)
    layout = read_layout(uri)
    return WindowPlan(
        layout=layout,
        scaler=read_scaler(uri),
        step=found.step,
        series_split=found.series_split,
        class_index={c: i for i, c in enumerate(layout.classes)},
    )


def write_shard(
    config: PipelineConfig,
    source: ParquetSeries,
    uri: str,
    shard: ShardRef,
    block_rows: int = 65_536,
) -> list[dict[str, Any]]:
    """Step 4, one shard: its windows as part ``shard.number`` of the build.

    Returns:
        The summary of each block written (part, row group, rows, series, windows).
    """
    plan = _read_plan(uri)
    rows = _shard_source(source, shard)
    _, blocks = write_part(rows, plan, config, uri, shard.number, block_rows)
    return blocks


def finish_build(uri: str, shard_blocks: list[list[dict[str, Any]]]) -> tuple[dict, list]:
    """Step 5, before publishing: the blocks in shard order, the counts, no work files.

    Raises:
        DataContractError: a split has no window at all.
    """
    blocks = [b for part in shard_blocks for b in part]
    counts = {s: sum(int(b["windows"][s]) for b in blocks) for s in SPLITS}
    require_every_split(counts, read_layout(uri))
    fs, path = storage.filesystem(storage.join(uri, WORK))
    if fs.exists(path):
        fs.rm(path, recursive=True)
    logger.info("windows per split: %s in %d block(s)", counts, len(blocks))
    return counts, blocks


def build_inputs(
    config: PipelineConfig, validated_uri: str, data_fingerprint: str, code: str | None = None
) -> dict[str, Any]:
    """What the manifest records about a build's inputs."""
    return {
        "data_fingerprint": data_fingerprint,
        "validated_uri": validated_uri,
        "settings": window_settings(config),
        "code_version": code or code_version(),
    }


def publish_build(
    config: PipelineConfig,
    build: WindowBuildRef,
    inputs: dict[str, Any],
    shard_blocks: list[list[dict[str, Any]]],
) -> dict[str, int]:
    """Step 5: finish the build and publish it under its key (the commit point)."""
    store = _store(config)
    counts, blocks = finish_build(build.uri, shard_blocks)
    store.publish(build.key, build.uri, inputs, counts, blocks)
    return counts


def abandon_build(config: PipelineConfig, build: WindowBuildRef) -> None:
    """Remove an unpublished build after a failed step (the next run would, too)."""
    if not build.reused:
        _store(config).abandon(build.uri)


def write_sharded(
    source: ParquetSeries,
    config: PipelineConfig,
    series_column: str,
    uri: str,
    block_rows: int = 65_536,
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Steps 1-5 one after another into the fresh build directory ``uri`` (no publish)."""
    shards = survey_shards(source, config, uri)
    for shard in shards:
        fit_shard(config, source, series_column, uri, shard)
    plan_build(config, series_column, uri, shards)
    written = [write_shard(config, source, uri, shard, block_rows) for shard in shards]
    return finish_build(uri, written)


@dataclass(frozen=True)
class WindowsBuilt:
    """Where the windows for a config and validated table are, and whether they were reused."""

    uri: str
    key: str
    reused: bool
    counts: dict[str, int]


def build_or_reuse(
    config: PipelineConfig,
    validated_uri: str,
    data_fingerprint: str,
    series_column: str,
    code: str | None = None,
    block_rows: int = 65_536,
    source: ParquetSeries | None = None,
    store_uri: str | None = None,
) -> WindowsBuilt:
    """The window step in one process: reuse the published build, or write a new one.

    The key covers the validated data's fingerprint, every window, split and scaling
    setting and the code version (``code`` overrides it, for tests).

    Args:
        source: where the rows come from; default: the validated table, read in batches.
        store_uri: the window store; default ``{pipeline_root}/windows`` (backtest folds
            keep theirs apart).
    """
    code = code or code_version()
    key = windows_fingerprint(data_fingerprint, window_settings(config), code)
    store = WindowStore(store_uri) if store_uri else _store(config)
    if source is None:
        source = ParquetSeries(validated_uri, column_roles(config, series_column))
    uri, reused = ensure_windows(
        store,
        key,
        build_inputs(config, validated_uri, data_fingerprint, code),
        lambda out: write_sharded(source, config, series_column, out, block_rows),
    )
    return WindowsBuilt(uri=uri, key=key, reused=reused, counts=read_manifest(uri)["counts"])
