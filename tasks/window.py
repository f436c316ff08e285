"""Step 3, window: split, scale and index the validated table's windows, streaming."""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast import window_store
from seqcast.config import PipelineConfig
from seqcast.records import ValidatedRef, WindowsRef
from seqcast.validation import series_column
from seqcast.window_step import build_or_reuse
from tasks.common import STEP_OPTIONS


@task(name="window", **STEP_OPTIONS)
def window(config: PipelineConfig, validated: ValidatedRef) -> WindowsRef:
    """Write train/val/test windows, reusing them when data and window settings are unchanged."""
    logger = get_run_logger()
    built = build_or_reuse(
        config, validated.uri, validated.fingerprint, series_column(config.source)
    )
    if built.reused:
        logger.info("Windows for this data, spec and code exist: reusing %s", built.uri)
    else:
        logger.info("Windows written to %s: %s", built.uri, built.counts)
    layout = window_store.read_layout(built.uri)
    return WindowsRef(
        uri=built.uri,
        fingerprint=built.key,
        rows_by_split=built.counts,
        n_inputs=len(layout.input_columns),
        n_outputs=len(layout.classes) or layout.horizon * len(layout.target_columns),
        classes=layout.classes,
    )
