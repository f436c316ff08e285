"""Step 7, predict: the champion's forecasts for every series, written as Parquet."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task

from seqcast import registry, storage
from seqcast.config import PipelineConfig
from seqcast.prediction import predict_frame
from seqcast.records import PredictionsRef, ValidatedRef
from tasks.common import STEP_OPTIONS, current_run_id, logical_date


def replace_earlier(folder: str, keep: str) -> None:
    """Remove the predictions an earlier (forced-over) run wrote for the same day."""
    fs, path = storage.filesystem(folder)
    _, kept = storage.filesystem(keep)
    for entry in fs.ls(path, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if entry.rstrip("/") != kept.rstrip("/") and not name.startswith("."):
            fs.rm(entry)


@task(name="predict", **STEP_OPTIONS)
def predict(
    config: PipelineConfig, validated: ValidatedRef, day: date | None = None
) -> PredictionsRef:
    """Load the champion, predict from each series' latest window and write the predictions.

    They go under ``predictions/date={day}/`` (the run's logical date) and replace any
    earlier predictions for that day.
    """
    day = day or logical_date()
    champion = registry.load_champion(config.pipeline_root)
    frame = storage.read_parquet(validated.uri).to_pandas()
    predictions = predict_frame(frame, champion)
    predictions["model_version"] = champion.version
    predictions["flow_run_id"] = current_run_id()
    origin = frame[champion.layout.timestamp].max()
    name = f"origin={origin:%Y%m%dT%H%M%SZ}__model={champion.version}.parquet"
    folder = storage.join(config.pipeline_root, "predictions", f"date={day.isoformat()}")
    uri = storage.join(folder, name)
    storage.write_frame(predictions, uri)
    replace_earlier(folder, keep=uri)
    get_run_logger().info(
        "%d prediction rows for %d series from champion %s written to %s",
        len(predictions),
        frame[champion.layout.series_column].nunique(),
        champion.version,
        uri,
    )
    return PredictionsRef(uri=uri, rows=len(predictions), model_version=champion.version)
