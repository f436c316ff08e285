"""Whole-sequence classification end to end: train -> evaluate -> register, then batch
classification of new sequences of unequal lengths, one of them out of range; and a network
that learns nothing, where the 1-NN challenger becomes champion and classifies the batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.config import config_from_dict
from seqcast.data.sample import sequence_set
from seqcast.io import storage
from seqcast.serving import registry

pytestmark = pytest.mark.flow


def sequences(seed: int, n: int) -> pd.DataFrame:
    """``n`` sequences of 10 to 30 steps, two classes told apart by level and frequency."""
    data = sequence_set(n_sequences=n, min_length=10, max_length=30, n_classes=2, seed=seed)
    data["value"] += 2.0 * (data["shape"] == "fast")
    return data


def sequence_config(path: Path, root: Path, **model: Any) -> Any:
    return config_from_dict(
        {
            "name": "seqs",
            "data_root": str(root),
            "task": "classify",
            "source": {
                "path": str(path),
                "series_id": "seq",
                "timestamp": "t",
                "time_unit": "step",
                "target": ["shape"],
                "features": ["value"],
            },
            "window": {"per": "sequence"},
            "split": {"by": "column", "column": "split"},
            "model": {
                "units": [8],
                "epochs": 4,
                "learning_rate": 0.03,
                "search": {"enabled": False},
                **model,
            },
        }
    )


def test_sequences_train_evaluate_and_classify_in_batch(tmp_path: Path) -> None:
    train_csv = tmp_path / "train.csv"
    data = sequences(seed=1, n=60)
    data.to_csv(train_csv, index=False)
    n_test = data.loc[data["split"] == "test", "seq"].nunique()
    config = sequence_config(train_csv, tmp_path / "root")

    outcome = nightly_training(config)

    evaluation = outcome.evaluation
    document = storage.read_json(evaluation.metrics_uri)
    assert document["test_windows"] == n_test  # the split column's test sequences, one each
    for predictor in ("model", "majority_class", "nearest_neighbour"):
        assert set(document["scores"][predictor]) == {"accuracy", "balanced_accuracy", "macro_f1"}
    assert document["scores"]["majority_class"]["balanced_accuracy"] == pytest.approx(0.5)
    assert len(document["confusion"]) == 2
    assert document["gate"]["promote"] and outcome.version.promoted
    assert evaluation.metrics_uri.endswith("metrics.json")

    new = sequences(seed=7, n=10).drop(columns=["shape", "split"])
    odd = new["seq"] == new["seq"].iloc[0]
    new.loc[odd, "value"] = new.loc[odd, "value"] * 40  # far outside the training range
    new_csv = tmp_path / "new.csv"
    new.to_csv(new_csv, index=False)
    predicted = pd.read_parquet(batch_predict(sequence_config(new_csv, tmp_path / "root")).uri)

    assert sorted(predicted["seq"]) == sorted(new["seq"].unique())  # one row per sequence
    assert predicted.loc[predicted["seq"] == new["seq"].iloc[0], "out_of_range"].item()
    assert predicted["out_of_range"].sum() == 1  # the others are classified, unflagged
    probabilities = predicted[["probability_fast", "probability_slow"]]
    assert probabilities.sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-5)
    assert set(predicted["shape"]) <= {"fast", "slow"}
    assert (predicted["model_version"] == outcome.version.version).all()
    lengths = new.groupby("seq").size()
    assert (predicted.set_index("seq")["steps"] == lengths.loc[predicted["seq"]]).all()


def test_a_1nn_beats_a_network_that_learns_nothing_and_serves_the_batch(tmp_path: Path) -> None:
    train_csv = tmp_path / "train.csv"
    sequences(seed=1, n=40).to_csv(train_csv, index=False)
    # One epoch at a tiny learning rate: the network stays at its initial weights.
    config = sequence_config(train_csv, tmp_path / "root", epochs=1, learning_rate=1e-7)

    outcome = nightly_training(config)

    document = storage.read_json(outcome.evaluation.metrics_uri)
    scores = document["scores"]
    assert scores["nearest_neighbour"]["accuracy"] > scores["model"]["accuracy"]
    facts = document["nearest_neighbour"]  # the default `auto` says what it chose and why
    loo = facts["loo_accuracy"]
    assert facts["setting"] == "auto" and set(loo) == {"dtw", "euclidean"}
    assert facts["metric"] == ("euclidean" if loo["euclidean"] > loo["dtw"] else "dtw")
    assert outcome.version.winner == "nearest_neighbour" and not outcome.version.promoted
    nearest = outcome.version.statistical
    assert nearest is not None and nearest.promoted and nearest.kind == "nearest_neighbour"
    assert outcome.version.champion == nearest.version
    served = registry.load_champion(config.pipeline_root).neighbours
    assert served is not None  # what batch prediction classifies with: the chosen distance
    assert (served.metric, served.loo_accuracy) == (facts["metric"], loo)

    new = sequences(seed=7, n=10)
    labels = new.groupby("seq")["shape"].first()
    new_csv = tmp_path / "new.csv"
    new.drop(columns=["shape", "split"]).to_csv(new_csv, index=False)
    predicted = pd.read_parquet(batch_predict(sequence_config(new_csv, tmp_path / "root")).uri)

    assert (predicted["model_kind"] == "nearest_neighbour").all()
    assert (predicted["model_version"] == nearest.version).all()
    assert sorted(predicted["seq"]) == sorted(labels.index)
    probabilities = predicted[["probability_fast", "probability_slow"]].to_numpy()
    assert sorted(set(probabilities.ravel())) == [0.0, 1.0]  # the neighbour's class only
    assert (predicted["probability"] == 1.0).all()
    right = (predicted.set_index("seq")["shape"] == labels.loc[predicted["seq"]]).mean()
    assert right >= 0.8  # two classes told apart by level: the 1-NN gets them
