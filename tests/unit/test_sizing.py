"""Training sized to the data: enough steps per epoch on small sets, today's batch on large
ones, explicit config values always win, and too-short epochs are flagged."""

from __future__ import annotations

import pytest

from seqcast.config import ModelSpec
from seqcast.modeling.sizing import FEW_STEPS, MAX_BATCH, size_training


def test_a_small_set_gets_small_batches_and_more_epochs() -> None:
    plan = size_training(ModelSpec(), 300)
    assert plan.batch_size == 8
    assert plan.steps_per_epoch == 38  # ceil(300 / 8): >= 30 steps, not 2 at batch 256
    assert plan.epochs == 53  # ceil(2000 / 38)
    assert plan.patience == 6
    assert plan.warning is None
    assert "300 training windows" in plan.reason


def test_a_medium_set() -> None:
    plan = size_training(ModelSpec(), 3_000)
    assert (plan.batch_size, plan.steps_per_epoch, plan.epochs, plan.patience) == (64, 47, 43, 5)


def test_a_large_set_keeps_todays_defaults() -> None:
    plan = size_training(ModelSpec(), 3_000_000)
    assert plan.batch_size == MAX_BATCH
    assert (plan.epochs, plan.patience) == (20, 3)
    assert plan.steps_per_epoch == 11_719


def test_batch_size_is_per_device() -> None:
    one, four = size_training(ModelSpec(), 3_000), size_training(ModelSpec(), 3_000, 4)
    assert four.batch_size == one.batch_size // 4
    assert four.steps_per_epoch == one.steps_per_epoch


def test_explicit_values_win() -> None:
    spec = ModelSpec(batch_size=32, epochs=7, patience=1)
    plan = size_training(spec, 3_000_000)
    assert (plan.batch_size, plan.epochs, plan.patience) == (32, 7, 1)
    assert plan.apply(ModelSpec()).batch_size == 32
    assert "from the config" in plan.reason
    partly = size_training(ModelSpec(batch_size=100), 3_000)
    assert partly.batch_size == 100 and partly.epochs == 67  # sized to 30 steps per epoch


def test_a_starved_epoch_is_flagged() -> None:
    plan = size_training(ModelSpec(batch_size=256), 300)
    assert plan.steps_per_epoch == 2 < FEW_STEPS
    assert plan.warning is not None and "only 2 gradient step" in plan.warning
    assert "model.batch_size" in plan.warning
    # Too few windows for even the smallest batch to make 10 steps: flagged as well.
    assert size_training(ModelSpec(), 40).warning is not None


def test_no_windows_is_an_error() -> None:
    with pytest.raises(ValueError, match="n_train_windows=0"):
        size_training(ModelSpec(), 0)
