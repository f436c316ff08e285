"""Step 8, report: the prediction artifact the Prefect UI shows for each batch-predict run."""

from __future__ import annotations

from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from seqcast.config import PipelineConfig, series_column
from seqcast.records import PredictionsRef, ValidatedRef
from seqcast.serving import prediction_report, registry
from tasks.common import STEP_OPTIONS


def artifact_key(config: PipelineConfig) -> str:
    """Stable per pipeline, so the UI shows the history of the night's predictions."""
    return f"{config.name}-predictions"


@task(name="prediction-report", **STEP_OPTIONS)
def publish_prediction_report(
    config: PipelineConfig, validated: ValidatedRef, predictions: PredictionsRef, day: date
) -> str:
    """Publish what was predicted: counts, set-aside series, model, file, worst-fit plot."""
    version = predictions.model_version
    kind, layout, _ = registry.read_layout(config.pipeline_root, version)
    # The prediction check's report (`tasks.validate`) names each set-aside series' causes.
    set_aside, quarantine_uri = prediction_report.set_aside_of(validated.report_uri)
    source = prediction_report.Columns(
        series_column(config.source), config.source.timestamp, layout.target_columns[0]
    )
    image, note = prediction_report.forecast_plot(
        config.pipeline_root, version, layout, predictions.uri, validated.uri, source, set_aside
    )
    summary = prediction_report.PredictionSummary(
        pipeline=config.name,
        day=day.isoformat(),
        rows=predictions.rows,
        series=predictions.series,
        model_version=version,
        model_kind=kind,
        uri=predictions.uri,
        set_aside=set_aside,
        quarantine_uri=quarantine_uri,
        plot_note=note,
        image=image,
    )
    text = prediction_report.markdown(summary)
    key = artifact_key(config)
    create_markdown_artifact(
        key=key,
        markdown=text,
        description=f"Predictions of pipeline `{config.name}`: what was written and a look "
        "at the forecasts of the worst-fitting series",
    )
    get_run_logger().info("Prediction artifact %s published (%d kB)", key, len(text) // 1024)
    return key
