"""The model search: reproducible from its seed, within its trial budget, starting from the
configured model, pruning a clearly bad trial, and an ensemble that loads like any model."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from seqcast.config import PipelineConfig, config_from_dict
from seqcast.io import storage
from seqcast.modeling.ensemble import load_member, mean_ensemble
from seqcast.modeling.networks import model_quantiles
from seqcast.modeling.search import EpochPruner, ModelSearch, TrialPlan, run_trial, search
from seqcast.modeling.sizing import size_training
from seqcast.records import TrialRecord
from seqcast.windows.step import WindowsBuilt, build_or_reuse
from seqcast.windows.store import read_split
from tests.conftest import arithmetic_frame


def tiny_store(tmp_path: Path, **search: object) -> tuple[PipelineConfig, WindowsBuilt]:
    frame = arithmetic_frame(2, 80)
    frame["y"] = np.sin(frame["y"] / 3.0)
    uri = str(tmp_path / "validated.parquet")
    storage.write_frame(frame, uri)
    config = config_from_dict(
        {
            "name": "search",
            "data_root": str(tmp_path / "root"),
            "source": {"path": "unused", "series_id": "id", "target": ["y"]},
            "window": {"lookback": 6, "horizon": 2},
            "model": {
                "units": [4],
                "epochs": 1,
                "seed": 3,
                "search": {"trials": 3, "minutes": 10, **search},
            },
        }
    )
    return config, build_or_reuse(config, uri, "fp", "id")


def run_search(config: PipelineConfig, built: WindowsBuilt, root: Path) -> list[TrialRecord]:
    plan = size_training(config.model, built.counts["train"])
    study = ModelSearch(config, plan)

    def train_batch(plans: list[TrialPlan]) -> list[TrialRecord]:
        return [run_trial(p, built.uri, str(root / f"{p.number}.keras")) for p in plans]

    search(study, train_batch, batch_size=2)
    return study.records


def test_same_seed_and_data_give_the_same_trials_winner_and_ensemble(tmp_path: Path) -> None:
    config, built = tiny_store(tmp_path)
    first = run_search(config, built, tmp_path / "a")
    second = run_search(config, built, tmp_path / "b")
    assert [r.params for r in first] == [r.params for r in second]
    assert len(first) == 3  # the trial budget
    best = min(first, key=lambda r: r.best_val_loss)
    assert best.number == min(second, key=lambda r: r.best_val_loss).number
    # normalize=auto: the first two trials are the configured model, both variants.
    assert [(r.model["units"], r.model["cell"], r.window_relative) for r in first[:2]] == [
        ([4], config.model.cell, False),
        ([4], config.model.cell, True),
    ]
    assert first[0].model["learning_rate"] == config.model.learning_rate
    assert all(math.isfinite(r.best_val_loss) and r.epochs_run == 1 for r in first)
    # Another seed proposes another third trial. Its first two are the configured model
    # whatever the seed: they are told the first search's outcomes rather than trained again.
    other = config.model_copy(update={"model": config.model.model_copy(update={"seed": 4})})
    reseeded = ModelSearch(other, size_training(other.model, built.counts["train"]))
    assert [p.params for p in reseeded.propose(2)] == [r.params for r in first[:2]]
    reseeded.record(first[:2])
    assert reseeded.propose(1)[0].params != first[2].params

    # The ensemble of the first two trials' models (a search of its own would train them
    # again): the mean of its members, loaded in safe mode.
    uris = [r.model_uri for r in first[:2]]
    ensemble = mean_ensemble(uris)
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    val = read_split(built.uri, "val")
    members = [load_member(u).predict(val.model_inputs(), verbose=0) for u in uris]
    mean = loaded.predict(val.model_inputs(), verbose=0)
    for output in ("forecast", "quantiles"):  # the quantile heads are averaged too
        np.testing.assert_allclose(
            mean[output], np.mean([m[output] for m in members], axis=0), rtol=1e-5
        )
    assert model_quantiles(loaded) == config.model.quantiles
    with pytest.raises(ValueError, match="at least two"):
        mean_ensemble(uris[:1])


def test_the_budget_ends_the_search(tmp_path: Path) -> None:
    config, built = tiny_store(tmp_path, trials=1)
    study = ModelSearch(config, size_training(config.model, built.counts["train"]))
    proposed = study.propose(4)
    assert len(proposed) == 1 and study.done and study.propose(4) == []
    timed, _ = tiny_store(tmp_path / "t", minutes=1e-9)
    assert ModelSearch(timed, size_training(timed.model, 100)).propose(2) == []


def test_a_clearly_bad_trial_is_pruned(tmp_path: Path) -> None:
    config, built = tiny_store(tmp_path)
    plan = size_training(config.model.model_copy(update={"epochs": 8}), built.counts["train"])
    good = [0.01] * 8  # earlier trials far better than anything this one reaches
    model = plan.apply(config.model).model_copy(update={"learning_rate": 1e-6})
    trial = TrialPlan(
        number=2, params={}, model=model, window_relative=False, earlier_curves=[good, good]
    )
    record = run_trial(trial, built.uri, str(tmp_path / "bad.keras"))
    assert record.pruned
    assert record.epochs_run == 3  # warm-up of 2 epochs, pruned at the first chance
    unpruned = run_trial(
        trial.model_copy(update={"earlier_curves": []}), built.uri, str(tmp_path / "x.keras")
    )
    assert not unpruned.pruned and unpruned.epochs_run == 8


def test_the_pruner_leaves_a_trial_as_good_as_the_others() -> None:
    pruner = EpochPruner([[1.0, 0.5, 0.4, 0.3]])
    pruner.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    for epoch, loss in enumerate([0.9, 0.5, 0.35, 0.3]):
        pruner.on_epoch_end(epoch, {"val_loss": loss})
    assert pruner.pruned_at is None
