"""Step 7, predict: the champion's forecasts for every series, written as Parquet."""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast import registry, storage
from seqcast.config import PipelineConfig
from seqcast.prediction import predict_frame
from seqcast.records import PredictionsRef, ValidatedRef
from tasks.common import STEP_OPTIONS, current_run_id


@task(name="predict", **STEP_OPTIONS)
def predict(config: PipelineConfig, validated: ValidatedRef) -> PredictionsRef:
    """Load the champion, predict from each series' latest window and write the predictions."""
    champion = registry.load_champion(config.pipeline_root)
    frame = storage.read_parquet(validated.uri).to_pandas()
    predictions = predict_frame(frame, champion)
    predictions["model_version"] = champion.version
    predictions["flow_run_id"] = current_run_id()
    origin = frame[champion.layout.timestamp].max()
    name = f"origin={origin:%Y%m%dT%H%M%SZ}__model={champion.version}.parquet"
    uri = storage.join(config.pipeline_root, "predictions", name)
    storage.write_frame(predictions, uri)
    get_run_logger().info(
        "%d prediction rows for %d series from champion %s written to %s",
        len(predictions),
        predictions.iloc[:, 0].nunique(),
        champion.version,
        uri,
    )
    return PredictionsRef(uri=uri, rows=len(predictions), model_version=champion.version)
