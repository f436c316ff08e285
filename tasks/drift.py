"""The prediction flow's input-drift check: tonight's inputs against the champion's profile."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from seqcast.config import PipelineConfig, series_column
from seqcast.monitoring import drift
from seqcast.records import DriftRef, PredictionsRef, ValidatedRef
from seqcast.serving import registry
from tasks.common import STEP_OPTIONS, warn_on_failure
from tasks.events import INPUT_DRIFTED, emit


def artifact_key(config: PipelineConfig) -> str:
    """Stable per pipeline, so the UI shows the drift table night over night."""
    return f"{config.name}-input-drift"


@task(name="input-drift", **{**STEP_OPTIONS, "retries": 0})
def input_drift(config: PipelineConfig, validated: ValidatedRef, version: str) -> DriftRef | None:
    """Compare the prediction inputs with the model's training profile; alert on drift."""
    logger = get_run_logger()
    stored = registry.read_profile(config.pipeline_root, version)
    if stored is None:
        logger.info(
            "Model version %s has no input profile (registered before drift checks); input "
            "drift not checked",
            version,
        )
        return None
    profile = drift.Profile.from_json(stored)
    # Every profiled feature, whatever the champion reads (an ETS champion only its
    # target): a covariate that drifted reaches tomorrow's challengers. A whole-sequence
    # classifier predicts new sequences by design, so unseen series mean nothing there.
    _, layout, _ = registry.read_layout(config.pipeline_root, version)
    column = None if layout.per == "sequence" else series_column(config.source)
    report = drift.check_table(profile, validated.uri, column, config.monitor, seed=profile.seed)
    key = artifact_key(config)
    limits = report.limits
    create_table_artifact(
        key=key,
        table=report.rows(),
        description=f"Input drift of pipeline `{config.name}` against the training data of "
        f"model version `{version}` ({profile.scope} rows): a feature drifted when its PSI "
        f"is above {limits['drift_psi']} or its KS above {limits['drift_ks']}; unseen series "
        f"limit {limits['unseen_series']:.0%}. Drifted: "
        f"{', '.join(report.drifted) or 'none'}"
        + (f"; unseen series {report.unseen_share:.1%}" if report.unseen_share is not None else ""),
    )
    emitted = False
    if report.breached:
        emitted = emit(config, INPUT_DRIFTED, version, report.figures())
    else:
        logger.info("Input drift: none beyond the limits (%s)", key)
    return DriftRef(
        key=key,
        version=version,
        drifted=report.drifted,
        unseen_share=report.unseen_share,
        emitted=emitted,
    )


def check_input_drift(
    config: PipelineConfig, validated: ValidatedRef, predictions: PredictionsRef
) -> DriftRef | None:
    """Run `input_drift` unless ``monitor.enabled`` is off. A failed check does not fail the
    run: the predictions are published by then, and tomorrow's run checks again, so a
    warning says what went wrong and the run stays Completed. No retries for the same
    reason."""
    logger = get_run_logger()
    if not config.monitor.enabled:
        logger.info("Monitoring disabled (monitor.enabled: false): input drift not checked")
        return None
    result: DriftRef | None = warn_on_failure(
        input_drift,
        config,
        validated,
        predictions.model_version,
        what="Input drift check",
        consequence="the predictions are published and unaffected, and the next prediction "
        "run checks again",
    )
    return result
