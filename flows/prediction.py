"""The batch prediction flow: ingest -> live accuracy of earlier nights' forecasts -> validate
-> predict with the champion model -> report -> input drift."""

from __future__ import annotations

from prefect import flow

from flows.names import run_name
from flows.runners import run_sharded
from flows.sharded import ingest_source, predict_shards, validate_shards
from flows.tls import share_tls_contexts
from seqcast.config import PipelineConfig
from seqcast.records import PredictionsRef
from seqcast.serving import registry
from tasks.common import already_published, current_run_id, logical_date, run_trigger, skipped
from tasks.drift import check_input_drift
from tasks.live_accuracy import watch_live_accuracy
from tasks.prediction_report import publish_prediction_report

share_tls_contexts()  # Prefect's API clients: one TLS context each kind (flows.tls)


@flow(name="batch-predict", flow_run_name=run_name("predict"), validate_parameters=True)
def batch_predict(config: PipelineConfig, force: bool = False) -> PredictionsRef:
    """Forecast every series from its latest window with the champion; write Parquet and
    publish the prediction artifact (`{name}-predictions`). Before that, score the earlier
    nights' forecasts on the actuals that arrived since (`{name}-live-accuracy`); after it,
    compare the inputs with the champion's training profile (`{name}-input-drift`). Neither
    check fails the run: a failure there is a warning.

    Once per logical date: once a scheduled (or backfill) run published the date, another
    run for it ends ``Skipped`` and keeps the day's predictions, unless ``force``, which
    replaces them. A manual run's predictions are the day's too, but do not make a
    scheduled run skip (`seqcast.io.publications`). With no champion it fails at once,
    before reading the source (which may be large), with the registry's message.
    """
    day = logical_date()
    trigger = run_trigger()
    if (done := already_published(config, "predictions", day, force)) is not None:
        return skipped(PredictionsRef.model_validate(done.record["predictions"]), done.reason)
    registry.required_champion_version(config.pipeline_root)
    snapshot = ingest_source(config, predicting=True)
    watch_live_accuracy(config, snapshot, day)  # never stops the predictions
    validated = run_sharded(validate_shards, config, snapshot, True, current_run_id())
    # Publishes the day's file and its marker itself (seqcast.serving.publication).
    predictions = run_sharded(predict_shards, config, validated, day, current_run_id(), trigger)
    publish_prediction_report(config, validated, predictions, day)
    check_input_drift(config, validated, predictions)  # never fails the run
    return predictions
