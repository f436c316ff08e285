"""Train: fit the network on the train windows with early stopping on the validation windows.

Reproducible (seeded; optional op determinism), resumable (a checkpoint every epoch in
``backup_dir``, written atomically by `seqcast.modeling.checkpoints`: a killed or retried
run with the same directory continues from its last finished epoch) and visible (every
epoch is logged and passed to ``on_epoch_end``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from seqcast.config import ModelSpec
from seqcast.errors import SeqcastError
from seqcast.modeling.checkpoints import EpochCheckpoints
from seqcast.modeling.deadline import (
    Clock,
    DeadlineBeforeFirstEpochError,
    DeadlineCut,
    StopAtDeadline,
)
from seqcast.modeling.networks import build_model
from seqcast.modeling.sequence_sizing import size_for
from seqcast.windows.input_pipeline import (
    Batch,
    StreamedWindows,
    TrainingData,
    fit_arguments,
    whole_batch,
)
from seqcast.windows.windowing import WindowArrays, WindowLayout

logger = logging.getLogger(__name__)

VALIDATE_AT_ONCE = 4096
"""A validation split of at most this many windows is held as tensors and scored in one
step per epoch (`ValidateAtOnce`); larger ones go through Keras's own validation loop."""
VALIDATE_AT_ONCE_BYTES = 64 * 2**20
"""And only if its model inputs fit in this many bytes: long, wide windows (720 steps of 50
inputs is 144 kB a window) go through Keras's loop in batches instead of one large one."""

EpochHook = Callable[[int, int, dict[str, float]], None]
"""Called after each epoch with (epochs done, epochs planned, that epoch's metrics)."""


class TrainingDivergedError(SeqcastError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainingResult:
    model: keras.Model
    history: dict[str, list[float]]
    first_epoch: int
    """Epoch (0-based) this call started from: > 0 when it resumed from a checkpoint."""
    epochs_run: int
    best_val_loss: float
    seconds: float
    stopped_at_deadline: bool = False
    """The ``deadline`` ended the fit (after a finished epoch, or cutting one short: then
    the cut epoch is not in ``history`` and its weights are not kept)."""


class _EpochReport(keras.callbacks.Callback):
    """Logs each epoch's losses (they reach the Prefect run log) and calls the hook."""

    def __init__(self, epochs: int, hook: EpochHook | None) -> None:
        super().__init__()
        self.epochs, self.hook = epochs, hook

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {k: float(v) for k, v in (logs or {}).items()}
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(values.items()))
        logger.info("epoch %d/%d: %s", epoch + 1, self.epochs, shown)
        if self.hook is not None:
            self.hook(epoch + 1, self.epochs, values)


class ValidateAtOnce(keras.callbacks.Callback):
    """The epoch's validation loss and metrics (``val_*``, as ``fit(validation_data=...)``
    logs them), computed by one compiled ``test_step`` over every validation window.

    Keras's own loop costs 30-50 ms per epoch around that step (a dataset iteration, the
    test callbacks): on tiny data as much as the epoch's training, about 1 s of a 20-epoch
    fit of a 300-row series (benchmarks/README.md, "Start-up"). The values are means over
    the windows, as Keras's are when its batches are equal; with a smaller last batch
    Keras's per-output losses (a quantile model's point loss, which early stopping reads)
    weight every batch alike, so a handful of windows could sway them. First in the
    callback list, so every other callback sees them.
    """

    def __init__(self, data: Batch) -> None:
        super().__init__()
        inputs, y = data
        self.data = (tf.nest.map_structure(tf.convert_to_tensor, inputs), tf.convert_to_tensor(y))
        self._step: Callable[[Any], Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._step is None:
            self._step = tf.function(self.model.test_step, reduce_retracing=True)
        self.model.reset_metrics()  # the epoch's training values are in `logs` already
        self._step(self.data)
        if logs is not None:
            for name, value in self.model.get_metrics_result().items():
                logs[f"val_{name}"] = float(value)


class PointLossLogs(keras.callbacks.Callback):
    """Make ``loss`` and ``val_loss`` the point forecast's loss in a model with a quantile
    head (Keras reports their sum there); the pinball loss becomes ``quantile_loss``.

    First in the callback list, so early stopping, the search's pruner, checkpoints, the
    epoch report and the history all rank and show the point loss, as without the head.
    """

    _RENAMES = {"forecast_loss": "loss", "forecast_mae": "mae", "quantiles_loss": "quantile_loss"}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or "forecast_loss" not in logs:
            return
        for prefix in ("", "val_"):
            for old, new in self._RENAMES.items():
                if prefix + old in logs:
                    logs[prefix + new] = logs.pop(prefix + old)


def _held_validation(
    val_windows: TrainingData, layout: WindowLayout, strategy: tf.distribute.Strategy | None
) -> Batch | None:
    """The validation windows as one batch when `ValidateAtOnce` can score them: a split
    of known, small size on one device (replicas each validate their share of a stream)."""
    if (strategy or tf.distribute.get_strategy()).num_replicas_in_sync > 1:
        return None  # as `_resolved` counts devices: an ambient scope counts too
    if not isinstance(val_windows, WindowArrays | StreamedWindows):
        return None  # a dataset of unknown size
    steps = layout.lookback * len(layout.input_columns) + layout.horizon * layout.n_future
    window_bytes = 4 * (steps + layout.n_static)  # float32
    most = min(VALIDATE_AT_ONCE, VALIDATE_AT_ONCE_BYTES // max(window_bytes, 1))
    return whole_batch(val_windows, most)


def seed_everything(spec: ModelSpec) -> None:
    """Seed Python, NumPy and TensorFlow; turn on op determinism when asked."""
    keras.utils.set_random_seed(spec.seed)
    if spec.deterministic:
        tf.config.experimental.enable_op_determinism()


def _resolved(
    spec: ModelSpec,
    train_windows: TrainingData,
    strategy: tf.distribute.Strategy | None,
    per: str = "step",
) -> tuple[ModelSpec, int, int, int]:
    """``spec`` with its unset batch size, epochs and patience sized to the windows, and
    those three values."""
    if spec.batch_size is not None and spec.epochs is not None and spec.patience is not None:
        return spec, spec.batch_size, spec.epochs, spec.patience
    if isinstance(train_windows, WindowArrays):
        count = len(train_windows.y)
    elif isinstance(train_windows, StreamedWindows):
        count = train_windows.windows
    else:
        raise ValueError(
            "a tf.data.Dataset of training windows has no known size: set model.batch_size, "
            "model.epochs and model.patience, or pass WindowArrays or StreamedWindows"
        )
    devices = (strategy or tf.distribute.get_strategy()).num_replicas_in_sync
    plan = size_for(spec, count, devices, per)
    return plan.apply(spec), plan.batch_size, plan.epochs, plan.patience


def train(
    train_windows: TrainingData,
    val_windows: TrainingData,
    layout: WindowLayout,
    spec: ModelSpec,
    *,
    window_relative: bool = False,
    season: int | None = None,
    backup_dir: str | None = None,
    on_epoch_end: EpochHook | None = None,
    strategy: tf.distribute.Strategy | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    deadline: float | None = None,
    clock: Clock = time.time,
) -> TrainingResult:
    """Fit a fresh model; the best epoch's weights (by validation loss) are kept.

    The windows are in-memory arrays or streamed from the window store
    (`seqcast.windows.input_pipeline.stream_windows`, given the same ``strategy``). The model is
    built under ``strategy`` (default: TensorFlow's current one, a single device), so a
    `MirroredStrategy` from `seqcast.modeling.distribution.training_strategy` trains on every GPU.
    ``callbacks`` run after early stopping and before the epoch report (e.g. a pruner).

    ``spec.batch_size``, ``epochs`` and ``patience`` left unset are sized to the number of
    training windows (`seqcast.modeling.sizing.size_training`); callers that log the plan
    size it themselves and pass the resolved spec.

    ``deadline`` (seconds on ``clock``, default wall-clock ``time.time``): training stops at
    the first epoch or batch end after it (`seqcast.modeling.deadline`); an epoch cut short
    is dropped and the best finished epoch's weights are kept.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite.
        DeadlineBeforeFirstEpochError: the deadline passed before one epoch finished.
    """
    spec, batch_size, epochs, patience = _resolved(spec, train_windows, strategy, layout.per)
    seed_everything(spec)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = build_model(layout, spec, window_relative=window_relative, season=season)
    stop = StopAtDeadline(deadline, clock) if deadline is not None else None
    history = keras.callbacks.History()  # passed in, so a fit cut by the deadline keeps it
    steps: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.TerminateOnNaN(),
        *(callbacks or []),
        *([stop] if stop is not None else []),
        _EpochReport(epochs, on_epoch_end),
        history,
    ]
    steps.insert(0, PointLossLogs())
    if backup_dir is not None:
        # Before the report, so an epoch counts as done only once it is saved.
        steps.insert(1, EpochCheckpoints(backup_dir))
    if (held := _held_validation(val_windows, layout, strategy)) is not None:
        steps.insert(0, ValidateAtOnce(held))  # instead of Keras's validation loop
    arguments = fit_arguments(train_windows, val_windows if held is None else None, batch_size)
    started = time.perf_counter()
    try:
        model.fit(**arguments, epochs=epochs, callbacks=steps, verbose=0)
    except DeadlineCut as cut:
        # What fit() does at its end: early stopping restores the best finished epoch's
        # weights, the checkpoints remove themselves.
        for step in steps:
            step.on_train_end()
        if not history.epoch:
            raise DeadlineBeforeFirstEpochError(
                f"the deadline passed {cut.batches} batch(es) into the first epoch: no "
                "finished epoch to keep"
            ) from None
        logger.info(
            "deadline passed in epoch %d after %d batch(es): that epoch is dropped, the best "
            "of the %d finished epoch(s) is kept",
            cut.epoch + 1,
            cut.batches,
            len(history.epoch),
        )
    seconds = time.perf_counter() - started
    losses = history.history.get("loss", [])
    if losses and not math.isfinite(losses[-1]):
        raise TrainingDivergedError(
            f"training diverged: the loss became {losses[-1]} in epoch {len(losses)}. Lower "
            f"model.learning_rate (now {spec.learning_rate}) or look for extreme values in "
            "the inputs."
        )
    val_losses = history.history.get("val_loss", [float("nan")])
    return TrainingResult(
        model=model,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        first_epoch=history.epoch[0] if history.epoch else epochs,
        epochs_run=history.epoch[-1] + 1 if history.epoch else epochs,
        best_val_loss=float(min(val_losses)),
        seconds=seconds,
        stopped_at_deadline=stop is not None and stop.stopped is not None,
    )
