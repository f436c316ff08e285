"""The batch prediction flow: ingest -> validate -> predict with the champion model."""

from __future__ import annotations

from prefect import flow

from seqcast.config import PipelineConfig
from seqcast.records import PredictionsRef
from tasks.ingest import ingest
from tasks.predict import predict
from tasks.validate import validate


@flow(name="batch-predict", flow_run_name="predict-{config.name}", validate_parameters=True)
def batch_predict(config: PipelineConfig) -> PredictionsRef:
    """Forecast every series from its latest window with the champion; write Parquet."""
    snapshot = ingest(config)
    validated = validate(config, snapshot, predicting=True)
    return predict(config, validated)
