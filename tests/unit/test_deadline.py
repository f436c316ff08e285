"""The search's minutes stop a running fit: at an epoch's end the epoch counts; cut mid-epoch
the cut epoch is dropped and the best finished epoch's weights are kept; cut in the first
epoch the trial is dropped. The clock is a variable the test moves, never wall time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from seqcast.modeling.deadline import DeadlineBeforeFirstEpochError
from seqcast.modeling.search import ModelSearch, run_trial
from seqcast.modeling.sizing import size_training
from seqcast.modeling.training import train
from seqcast.records import TrialRecord
from tests.unit.test_search import tiny_store
from tests.unit.test_training import LAYOUT, SPEC, sine_windows

DEADLINE = 100.0


class MovingClock(keras.callbacks.Callback):
    """A clock at 0 that jumps past `DEADLINE` at a chosen batch or epoch end (0-based), and
    the weights after each finished epoch. Passed in ``callbacks``, its hooks run before the
    deadline's, so the deadline reads the moved clock at that same batch or epoch end."""

    def __init__(self, *, at_epoch_end: int | None = None, at_batch: tuple[int, int] | None = None):
        super().__init__()
        self.now, self.at_epoch_end, self.at_batch = 0.0, at_epoch_end, at_batch
        self.epoch = 0
        self.weights: list[list[np.ndarray]] = []

    def __call__(self) -> float:
        return self.now

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if (self.epoch, batch) == self.at_batch:
            self.now = DEADLINE

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.weights.append(self.model.get_weights())
        if epoch == self.at_epoch_end:
            self.now = DEADLINE


def fit(clock: MovingClock, backup_dir: str | None = None) -> Any:
    spec = SPEC.model_copy(update={"epochs": 4, "patience": 4})  # 8 batches of 32 per epoch
    return train(
        sine_windows(256),
        sine_windows(64, seed=1),
        LAYOUT,
        spec,
        callbacks=[clock],
        deadline=DEADLINE,
        clock=clock,
        backup_dir=backup_dir,
    )


def test_a_deadline_at_an_epoch_end_stops_after_that_epoch() -> None:
    clock = MovingClock(at_epoch_end=0)
    result = fit(clock)
    assert result.stopped_at_deadline
    assert result.epochs_run == 1 and len(result.history["val_loss"]) == 1  # of 4 planned


def test_a_deadline_mid_epoch_drops_that_epoch_and_keeps_the_best_finished_one(
    tmp_path: Path,
) -> None:
    clock = MovingClock(at_batch=(2, 0))  # the first batch of the third epoch
    result = fit(clock, backup_dir=str(tmp_path / "backup"))
    assert result.stopped_at_deadline
    assert result.epochs_run == 2 and len(result.history["val_loss"]) == 2
    best = int(np.argmin(result.history["val_loss"]))
    assert result.best_val_loss == min(result.history["val_loss"])
    # The weights of the best finished epoch, not those after the cut epoch's batch.
    for kept, saved in zip(result.model.get_weights(), clock.weights[best], strict=True):
        np.testing.assert_array_equal(kept, saved)
    assert not (tmp_path / "backup").exists()  # the checkpoints went, as after a whole fit


def test_a_deadline_in_the_first_epoch_leaves_nothing_to_keep() -> None:
    with pytest.raises(DeadlineBeforeFirstEpochError, match="1 batch"):
        fit(MovingClock(at_batch=(0, 0)))


def test_no_deadline_passing_trains_every_epoch() -> None:
    result = fit(MovingClock())
    assert not result.stopped_at_deadline and result.epochs_run == 4


def test_a_trial_stopped_before_its_first_epoch_is_dropped_and_the_search_ranks_the_rest(
    tmp_path: Path,
) -> None:
    config, built = tiny_store(tmp_path)
    plan = size_training(config.model, built.counts["train"])
    search = ModelSearch(config, plan)
    first, second = search.propose(2)
    passed = second.model_copy(update={"deadline": 5.0})
    dropped = run_trial(passed, built.uri, str(tmp_path / "1.keras"), clock=lambda: 6.0)
    assert dropped.stopped and dropped.best_val_loss is None and dropped.epochs_run == 0
    # Queued until after the deadline: dropped before its model is even built.
    assert dropped.error == "model.search.minutes ran out: the deadline passed before it started"
    assert not (tmp_path / "1.keras").exists()
    kept = TrialRecord(
        **{
            **dropped.model_dump(),
            "number": first.number,
            "params": first.params,
            "model_uri": "kept.keras",
            "val_losses": [0.5, 0.4],
            "best_val_loss": 0.4,
            "epochs_run": 2,
            "error": None,
        }
    )  # stopped after 2 finished epochs
    search.record([kept, dropped])
    assert search.ranked() == [kept]  # ranked on its best finished epoch; the dropped one not
