"""Train: fit the network on the train windows with early stopping on the validation windows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import keras

from seqcast.config import ModelSpec
from seqcast.input_pipeline import TrainingData, fit_arguments
from seqcast.models import build_model
from seqcast.windowing import WindowLayout

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    model: keras.Model
    history: dict[str, list[float]]
    epochs_run: int
    best_val_loss: float
    seconds: float


class EpochLog(keras.callbacks.Callback):
    """Logs each epoch's losses, so a run's progress shows in the Prefect run log."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        logger.info("epoch %d/%d: %s", epoch + 1, self.epochs, shown)


def train(
    train_windows: TrainingData,
    val_windows: TrainingData,
    layout: WindowLayout,
    spec: ModelSpec,
) -> TrainingResult:
    """Fit a fresh model; the best epoch's weights (by validation loss) are kept.

    The windows are in-memory arrays or streamed from the window store
    (`seqcast.input_pipeline.stream_windows`).
    """
    keras.utils.set_random_seed(spec.seed)
    model = build_model(layout, spec)
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=spec.patience, restore_best_weights=True
        ),
        keras.callbacks.TerminateOnNaN(),
        EpochLog(spec.epochs),
    ]
    started = time.perf_counter()
    history = model.fit(
        **fit_arguments(train_windows, val_windows, spec.batch_size),
        epochs=spec.epochs,
        callbacks=callbacks,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    val_losses = history.history.get("val_loss", [float("nan")])
    return TrainingResult(
        model=model,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        epochs_run=len(val_losses),
        best_val_loss=float(min(val_losses)),
        seconds=seconds,
    )
