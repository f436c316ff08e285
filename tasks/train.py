"""Step 4, train: fit an LSTM or GRU on the train windows, early-stopped on validation loss."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from seqcast import storage, window_store
from seqcast.config import PipelineConfig
from seqcast.input_pipeline import stream_windows
from seqcast.records import TrainedRef, WindowsRef
from seqcast.training import train as fit
from tasks.common import STEP_OPTIONS, current_run_id


@task(name="train", **STEP_OPTIONS)
def train(config: PipelineConfig, windows: WindowsRef) -> TrainedRef:
    """Train a fresh model and save it as a `.keras` file under this flow run's directory."""
    logger = get_run_logger()
    layout = window_store.read_layout(windows.uri)
    spec = config.model
    train_split = stream_windows(
        windows.uri, "train", spec.batch_size, spec.shuffle_buffer, seed=spec.seed
    )
    val_split = stream_windows(windows.uri, "val", spec.batch_size)
    logger.info(
        "Training %s %s on %d windows (%d validation) streamed from %s, up to %d epochs",
        config.model.cell.upper(),
        config.model.units,
        windows.rows_by_split["train"],
        windows.rows_by_split["val"],
        windows.uri,
        config.model.epochs,
    )
    result = fit(train_split, val_split, layout, config.model)
    run_dir = storage.join(config.pipeline_root, "runs", current_run_id())
    model_uri = storage.join(run_dir, "model.keras")
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "model.keras"
        result.model.save(local)
        storage.write_bytes(model_uri, local.read_bytes())
    storage.write_json(storage.join(run_dir, "history.json"), result.history)
    logger.info(
        "Trained %d epoch(s) in %.1fs; best val_loss %.4f",
        result.epochs_run,
        result.seconds,
        result.best_val_loss,
    )
    return TrainedRef(
        model_uri=model_uri,
        epochs_run=result.epochs_run,
        best_val_loss=result.best_val_loss,
        train_seconds=round(result.seconds, 3),
    )
