"""Step 7, predict: the champion's forecasts for every series, per shard, then one Parquet file."""

from __future__ import annotations

import threading
from datetime import date

import pandas as pd
from prefect import get_run_logger, task

from seqcast.config import PipelineConfig, series_column
from seqcast.data.contracts import PREDICTION_CONTRACT
from seqcast.io import storage
from seqcast.records import (
    PredictionPartRef,
    PredictionPlanRef,
    PredictionsRef,
    ShardRef,
    ValidatedRef,
)
from seqcast.serving import publication, registry
from seqcast.serving.prediction import combine_parts, predict_part, remove_stale_staging
from seqcast.serving.sequence_prediction import contract_ranges
from seqcast.windows.series_source import make_shards, series_row_counts
from tasks.common import STEP_OPTIONS

_loaded: dict[tuple[str, str, str], registry.LoadedModel] = {}
_loading = threading.Lock()


def run_champion(pipeline_root: str, version: str, flow_run_id: str) -> registry.LoadedModel:
    """The champion, verified and loaded once per run and process: the run's shards share it
    and its compiled forward pass (a load per shard made TensorFlow trace it per shard).
    Only the last run's model is kept."""
    key = (pipeline_root, version, flow_run_id)
    with _loading:
        if key not in _loaded:
            _loaded.clear()
            _loaded[key] = registry.load_version(pipeline_root, version)
        return _loaded[key]


@task(name="predict-plan", **STEP_OPTIONS)
def plan_prediction(
    config: PipelineConfig, validated: ValidatedRef, flow_run_id: str
) -> PredictionPlanRef:
    """Pick the champion once and cut the validated table into shards of series.

    Read once per run, so every shard predicts with the same model even if a training run
    promotes another one meanwhile.
    """
    version = registry.required_champion_version(config.pipeline_root)
    counts = series_row_counts(validated.uri, series_column(config.source))
    staging = storage.join(config.pipeline_root, "predictions", f".staging-{flow_run_id}")
    shards = make_shards(counts, config.runner.series_per_shard)
    get_run_logger().info("Predicting %d series in %d shard(s)", len(counts), len(shards))
    return PredictionPlanRef(model_version=version, staging_uri=staging, shards=shards)


@task(name="predict-shard", **STEP_OPTIONS)
def predict_shard(
    config: PipelineConfig,
    validated: ValidatedRef,
    plan: PredictionPlanRef,
    shard: ShardRef,
    flow_run_id: str,
) -> PredictionPartRef:
    """Predict one shard's series from their latest windows; stage them as one Parquet part."""
    champion = run_champion(config.pipeline_root, plan.model_version, flow_run_id)
    out = storage.join(plan.staging_uri, f"part-{shard.number:05d}.parquet")
    ranges = None
    if champion.layout.per == "sequence":
        manifest = registry.read_manifest(config.pipeline_root, plan.model_version)
        stored = manifest.get(PREDICTION_CONTRACT)
        ranges = contract_ranges(stored, champion.layout.input_columns)
    return predict_part(validated.uri, shard, champion, out, flow_run_id, ranges)


@task(name="predict-combine", **STEP_OPTIONS)
def combine_predictions(
    config: PipelineConfig,
    plan: PredictionPlanRef,
    parts: list[PredictionPartRef],
    day: date,
    flow_run_id: str,
    trigger: str,
) -> PredictionsRef:
    """Combine the parts into one file under ``predictions/date={day}/`` and publish it.

    The day's marker then names the file, and any earlier predictions for that day (a
    forced rerun) are removed after that (`seqcast.serving.publication`).
    """
    parts = sorted(parts, key=lambda p: p.uri)  # part-{shard} names: shard order
    origin = max(pd.Timestamp(p.origin) for p in parts)
    # The id becomes part of a file name: never let one like ../.. escape the folder.
    version = registry.check_version_id(plan.model_version, "the prediction plan")
    name = f"origin={origin:%Y%m%dT%H%M%SZ}__model={version}.parquet"
    uri = storage.join(publication.day_folder(config.pipeline_root, day), name)
    rows = combine_parts(parts, uri)
    series = sum(p.series for p in parts)
    result = PredictionsRef(uri=uri, rows=rows, model_version=plan.model_version, series=series)
    replaced = publication.publish_day(config.pipeline_root, day, result, flow_run_id, trigger)
    logger = get_run_logger()
    if replaced:
        logger.info("Replaced the earlier predictions for %s: %s", day, ", ".join(replaced))
    fs, staging = storage.filesystem(plan.staging_uri)
    if fs.exists(staging):
        fs.rm(staging, recursive=True)
    stale = remove_stale_staging(storage.join(config.pipeline_root, "predictions"))
    if stale:
        logger.info("Removed staged parts of crashed runs: %s", ", ".join(stale))
    logger.info(
        "%d prediction rows for %d series from champion %s published as %s",
        rows,
        series,
        plan.model_version,
        uri,
    )
    return result
