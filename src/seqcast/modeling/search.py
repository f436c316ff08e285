"""A budgeted model search: Optuna proposes model settings, the caller trains them.

Ask/tell, so the trials can train anywhere (mapped Prefect tasks on threads or Dask
workers) while the study lives in the flow's process: `ModelSearch.propose` asks for a
batch of trials, each as a `TrialPlan` a worker can train on its own (`run_trial`), and
`ModelSearch.record` tells the study their validation losses. The sampler is a TPE seeded
from ``model.seed``, so the same data and seed propose the same trials.

The first trials are exactly the configured model (with ``normalize: auto``, both of its
variants, as the plain train step fits them), so the search is never worse than the
configured model on validation loss. The searched settings are the cell, the width and
depth of the recurrent stack, dropout, learning rate, batch size, normalize (series-scaled
or window-relative, when ``window.normalize`` is ``auto``) and residual (forecast).

Pruning needs no shared study: a trial carries the validation-loss curves of the trials
finished before it was proposed and a median pruner compares its epochs with theirs
(`EpochPruner`). Selection reads validation windows only; test windows stay untouched.

The minutes bound every trial too, not only the start of the next one: each trial carries
the search's deadline and stops at its first batch end after it, keeping its best finished
epoch (`seqcast.modeling.deadline`); it is then ranked like the others, or, with no epoch
finished, fails and is never chosen.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import optuna
from pydantic import BaseModel, ConfigDict

from seqcast.config import ModelSpec, PipelineConfig
from seqcast.io import storage
from seqcast.modeling.deadline import Clock, DeadlineBeforeFirstEpochError
from seqcast.modeling.sizing import MAX_BATCH, MIN_BATCH, TrainingPlan
from seqcast.modeling.training import TrainingDivergedError, train
from seqcast.records import TrialRecord
from seqcast.windows.input_pipeline import stream_windows
from seqcast.windows.store import read_layout

logger = logging.getLogger(__name__)

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the flow logs each trial itself

WIDTHS = (16, 32, 64, 128)
"""Units per recurrent layer the search tries (plus the configured width)."""
DEPTHS = (1, 2)
"""Stacked recurrent layers the search tries (plus the configured depth)."""
PRUNE_WARMUP_EPOCHS = 2
"""Epochs a trial trains before it may be pruned (early epochs are noisy)."""

TRIAL_LOCK = threading.Lock()
"""One trial trains at a time per process: Keras seeds are process-global, so trials on a
thread runner would otherwise perturb each other's random streams (and TensorFlow uses
every core for one fit anyway). Dask workers are processes: trials there run side by side."""


class TrialPlan(BaseModel):
    """One trial to train: its settings, resolved, and what its pruner compares with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    params: dict[str, Any]
    """The searched parameters, as Optuna names them (shown in the UI and the table)."""
    model: ModelSpec
    """The full model settings (batch size, epochs and patience resolved)."""
    window_relative: bool
    earlier_curves: list[list[float]] = []
    """Per-epoch validation losses of the unpruned trials finished before this one."""
    deadline: float | None = None
    """When the search's minutes run out (``time.time()`` seconds): the trial stops training
    then, at its next batch end (`seqcast.modeling.deadline`)."""

    @property
    def label(self) -> str:
        """Short text for a task run name: ``trial-3 gru[32,32] lr=0.0021 ...``."""
        m = self.model
        units = ",".join(str(u) for u in m.units)
        return (
            f"trial-{self.number} {m.cell}[{units}] lr={m.learning_rate:.2g} "
            f"batch={m.batch_size} dropout={m.dropout:.2g} "
            f"{'window' if self.window_relative else 'series'}"
            f"{' residual' if m.residual else ''}"
        )


class EpochPruner(keras.callbacks.Callback):
    """Stop a fit whose validation loss trails the median of earlier trials at that epoch.

    Optuna's `MedianPruner` on a private in-memory study holding the earlier trials'
    curves; the fit stops at the epoch it says to prune (early stopping then restores the
    best weights so far).
    """

    def __init__(self, earlier_curves: list[list[float]], warmup: int = PRUNE_WARMUP_EPOCHS):
        super().__init__()
        self.pruned_at: int | None = None
        self.study: optuna.Study | None = None
        curves = [c for c in earlier_curves if c]
        if not curves:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.create_study(
                direction="minimize",
                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=warmup),
            )
            self.study.add_trials(
                optuna.trial.create_trial(
                    value=min(curve),
                    intermediate_values=dict(enumerate(curve)),
                )
                for curve in curves
            )
        self.trial = self.study.ask()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.study is None or self.pruned_at is not None:
            return
        value = float((logs or {}).get("val_loss", math.nan))
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.model.stop_training = True
            logger.info("trial pruned after epoch %d (val_loss %.4f)", epoch + 1, value)


def _batch_choices(batch: int) -> list[int]:
    choices = {batch} | {b for b in (batch // 2, batch * 2) if MIN_BATCH <= b <= MAX_BATCH}
    return sorted(choices)


class ModelSearch:
    """The study of one search, its budget, and the trials it has recorded.

    Args:
        config: the pipeline config; ``config.model`` is the first trial and the centre of
            the searched ranges, ``config.model.search`` the budget.
        plan: the batch size, epochs and patience sized for the training windows; every
            trial trains for at most these epochs with this patience.
    """

    def __init__(self, config: PipelineConfig, plan: TrainingPlan) -> None:
        self.config, self.plan = config, plan
        self.spec = config.model
        self.budget = config.model.search
        self.started = time.monotonic()
        # Wall-clock, not monotonic: trials may train in other processes (Dask workers).
        self.deadline = time.time() + 60.0 * self.budget.minutes
        self.records: list[TrialRecord] = []
        self._pending: dict[int, optuna.Trial] = {}
        self._asked = 0
        model = self.spec
        self._space: dict[str, optuna.distributions.BaseDistribution] = {
            "cell": optuna.distributions.CategoricalDistribution(["lstm", "gru"]),
            "width": optuna.distributions.CategoricalDistribution(
                sorted({*WIDTHS, model.units[0]})
            ),
            "layers": optuna.distributions.CategoricalDistribution(
                sorted({*DEPTHS, len(model.units)})
            ),
            "dropout": optuna.distributions.FloatDistribution(0.0, max(0.3, model.dropout)),
            "learning_rate": optuna.distributions.FloatDistribution(
                min(1e-4, model.learning_rate), max(1e-2, model.learning_rate), log=True
            ),
            "batch_size": optuna.distributions.CategoricalDistribution(
                _batch_choices(plan.batch_size)
            ),
        }
        relative = config.window_relative_options
        if len(relative) > 1:
            self._space["normalize"] = optuna.distributions.CategoricalDistribution(
                ["series", "window"]
            )
        if config.task == "forecast":
            self._space["residual"] = optuna.distributions.CategoricalDistribution([False, True])
        self.study = optuna.create_study(
            direction="minimize",
            sampler=optuna.samplers.TPESampler(
                seed=model.seed, n_startup_trials=max(2, self.budget.trials // 3)
            ),
        )
        configured: dict[str, Any] = {
            "cell": model.cell,
            "width": model.units[0],
            "layers": len(model.units),
            "dropout": model.dropout,
            "learning_rate": model.learning_rate,
            "batch_size": plan.batch_size,
            "residual": model.residual,
        }
        for normalize in ("series", "window") if len(relative) > 1 else (None,):
            params = {k: v for k, v in configured.items() if k in self._space}
            if normalize is not None:
                params["normalize"] = normalize
            self.study.enqueue_trial(params)

    @property
    def trials_left(self) -> int:
        return self.budget.trials - self._asked

    @property
    def minutes_used(self) -> float:
        return (time.monotonic() - self.started) / 60.0

    @property
    def done(self) -> bool:
        """The trial budget is spent or the minutes are up (no new trials start then)."""
        return self.trials_left <= 0 or self.minutes_used >= self.budget.minutes

    def _model(self, params: dict[str, Any]) -> tuple[ModelSpec, bool]:
        """The model settings and window-relative flag of one trial's parameters."""
        spec = self.spec
        width, layers = params["width"], params["layers"]
        # The configured stack as configured (it may taper, e.g. [64, 32]); others uniform.
        same_stack = (width, layers) == (spec.units[0], len(spec.units))
        units = list(spec.units) if same_stack else [width] * layers
        model = self.plan.apply(spec).model_copy(
            update={
                "cell": params["cell"],
                "units": units,
                "dropout": params["dropout"],
                "learning_rate": params["learning_rate"],
                "batch_size": params["batch_size"],
                "residual": params.get("residual", spec.residual),
            }
        )
        normalize = params.get("normalize")
        relative = normalize == "window" if normalize else self.config.window_relative_options[0]
        return model, relative

    def propose(self, count: int) -> list[TrialPlan]:
        """Up to ``count`` new trials (fewer when the budget ends); none once it is spent."""
        if self.done:
            return []
        curves = [r.val_losses for r in self.records if not r.pruned]
        plans = []
        for _ in range(min(count, self.trials_left)):
            trial = self.study.ask(self._space)
            self._pending[trial.number] = trial
            self._asked += 1
            model, relative = self._model(trial.params)
            plans.append(
                TrialPlan(
                    number=trial.number,
                    params=trial.params,
                    model=model,
                    window_relative=relative,
                    earlier_curves=curves,
                    deadline=self.deadline,
                )
            )
        return plans

    def record(self, results: list[TrialRecord]) -> None:
        """Tell the study each trial's outcome: its epochs' losses and its best one."""
        for result in results:
            trial = self._pending.pop(result.number)
            for epoch, value in enumerate(result.val_losses):
                if math.isfinite(value):
                    trial.report(value, epoch)
            if result.pruned:
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif result.best_val_loss is not None:
                self.study.tell(trial, result.best_val_loss)
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self.records.append(result)

    def ranked(self) -> list[TrialRecord]:
        """Finished, unpruned trials, lowest validation loss first (ties: earlier trial)."""
        kept = [(r.best_val_loss, r) for r in self.records if not r.pruned]
        ranked = sorted(
            ((loss, r.number, r) for loss, r in kept if loss is not None),
            key=lambda item: (item[0], item[1]),
        )
        return [r for _, _, r in ranked]


def search(
    search_: ModelSearch,
    train_batch: Callable[[list[TrialPlan]], list[TrialRecord]],
    batch_size: int,
) -> list[TrialRecord]:
    """Run ``search_`` to its budget, ``batch_size`` trials at a time; ranked trials.

    ``train_batch`` trains a batch of trials (a mapped Prefect task, in the flow).
    """
    while plans := search_.propose(batch_size):
        search_.record(train_batch(plans))
    return search_.ranked()


def run_trial(
    plan: TrialPlan,
    windows_uri: str,
    model_uri: str,
    *,
    season: int | None = None,
    backup_dir: str | None = None,
    clock: Clock = time.time,
) -> TrialRecord:
    """Train one trial on the windows at ``windows_uri``; save its model at ``model_uri``.

    Streams the train and validation splits (the test split is never read), prunes by
    the earlier trials' curves, keeps the best epoch's weights. Once ``plan.deadline``
    passes (on ``clock``) training stops at the next batch end: the trial keeps its best
    finished epoch (``stopped``), or fails when none finished.
    """
    spec = plan.model
    assert spec.batch_size is not None  # TrialPlan.model is resolved by ModelSearch
    pruner = EpochPruner(plan.earlier_curves)
    started = time.perf_counter()
    try:
        with TRIAL_LOCK:
            if plan.deadline is not None and clock() >= plan.deadline:
                # Proposed in time but queued behind another trial until the minutes ran
                # out: building and tracing the model would be spent for nothing.
                raise DeadlineBeforeFirstEpochError("the deadline passed before it started")
            result = train(
                stream_windows(
                    windows_uri, "train", spec.batch_size, spec.shuffle_buffer, spec.seed
                ),
                stream_windows(windows_uri, "val", spec.batch_size),
                read_layout(windows_uri),
                spec,
                window_relative=plan.window_relative,
                season=season,
                backup_dir=backup_dir,
                callbacks=[pruner],
                deadline=plan.deadline,
                clock=clock,
            )
        if not all(math.isfinite(v) for v in result.history.get("val_loss", [math.nan])):
            raise TrainingDivergedError("the validation loss became NaN or infinite")
    except (TrainingDivergedError, DeadlineBeforeFirstEpochError) as exc:
        # A candidate that diverges (e.g. too high a learning rate), or that the search's
        # minutes stopped before one epoch ended, is a failed trial, not a failed search:
        # the study is told and the others go on.
        stopped = isinstance(exc, DeadlineBeforeFirstEpochError)
        error = f"model.search.minutes ran out: {exc}" if stopped else str(exc)
        logger.warning("trial %d failed: %s", plan.number, error)
        return TrialRecord(
            number=plan.number,
            params=plan.params,
            model=spec.model_dump(mode="json", exclude={"search"}),
            window_relative=plan.window_relative,
            model_uri="",
            val_losses=[],
            train_losses=[],
            best_val_loss=None,
            epochs_run=0,
            seconds=round(time.perf_counter() - started, 3),
            pruned=False,
            error=error,
            stopped=stopped,
        )
    save_model(result.model, model_uri)
    return TrialRecord(
        number=plan.number,
        params=plan.params,
        model=spec.model_dump(mode="json", exclude={"search"}),
        window_relative=plan.window_relative,
        model_uri=model_uri,
        val_losses=result.history.get("val_loss", []),
        train_losses=result.history.get("loss", []),
        best_val_loss=result.best_val_loss,
        epochs_run=result.epochs_run,
        seconds=round(result.seconds, 3),
        pruned=pruner.pruned_at is not None,
        stopped=result.stopped_at_deadline,
    )


def save_model(model: keras.Model, uri: str) -> None:
    """Write ``model`` as a ``.keras`` file at ``uri`` (local path or fsspec URL), atomically."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "model.keras"
        model.save(local)
        storage.write_bytes(uri, local.read_bytes())
