"""Step 3, window: split, scale and cut the validated table into training windows."""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast import storage, window_store
from seqcast.config import PipelineConfig
from seqcast.records import ValidatedRef, WindowsRef
from seqcast.validation import series_column
from seqcast.windowing import build_windows
from tasks.common import STEP_OPTIONS


@task(name="window", **STEP_OPTIONS)
def window(config: PipelineConfig, validated: ValidatedRef) -> WindowsRef:
    """Write train/val/test windows, reusing them when data and window settings are unchanged."""
    logger = get_run_logger()
    settings = {
        "task": config.task,
        "source": config.source.model_dump(),
        "window": config.window.model_dump(),
        "split": config.split.model_dump(),
        "normalize": config.normalize,
    }
    fingerprint = window_store.windows_fingerprint(validated.fingerprint, settings)
    uri = storage.join(config.pipeline_root, "windows", fingerprint[:16])
    if storage.exists(storage.join(uri, "counts.json")):
        logger.info("Windows for this data and spec exist: reusing %s", uri)
    else:
        frame = storage.read_parquet(validated.uri).to_pandas()
        windows, scaler, layout = build_windows(frame, config, series_column(config.source))
        staging = storage.staging_uri(uri)
        counts = window_store.write_windows(staging, windows, scaler, layout)
        storage.write_json(storage.join(staging, "counts.json"), counts)
        storage.publish_directory(staging, uri)
        logger.info("Windows written to %s: %s", uri, counts)
    counts = storage.read_json(storage.join(uri, "counts.json"))
    layout = window_store.read_layout(uri)
    return WindowsRef(
        uri=uri,
        fingerprint=fingerprint,
        rows_by_split=counts,
        n_inputs=len(layout.input_columns),
        n_outputs=len(layout.classes) or layout.horizon * len(layout.target_columns),
        classes=layout.classes,
    )
