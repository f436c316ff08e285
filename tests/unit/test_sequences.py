"""Whole-sequence classification (window.per=sequence): windows, labels, padding and masks,
splits of whole sequences, sizing and the classifier gate."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seqcast.config import config_from_dict
from seqcast.data.contracts import derive_contract
from seqcast.data.sample import sequence_set
from seqcast.errors import ConfigError, DataContractError
from seqcast.modeling.gate import decide_classifier
from seqcast.modeling.sequence_sizing import size_sequence_training
from seqcast.windows.build import build_windows
from seqcast.windows.sequences import VALID_COLUMN, assign_splits


def sequence_config(**overrides: Any) -> Any:
    data: dict[str, Any] = {
        "name": "seq",
        "task": "classify",
        "source": {
            "path": "unused.csv",
            "series_id": "seq",
            "timestamp": "t",
            "time_unit": "step",
            "target": ["shape"],
            "features": ["value"],
        },
        "window": {"per": "sequence"},
        "split": {"by": "column", "column": "split"},
        "model": {"units": [4], "epochs": 1, "batch_size": 8, "patience": 1},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(data)


def frame(**kwargs: Any) -> pd.DataFrame:
    """A generated sequence set, steps as integers (the window step reads them as instants)."""
    return sequence_set(**{"n_sequences": 24, "min_length": 5, "max_length": 12, **kwargs})


def test_each_sequence_is_one_window_padded_on_the_right() -> None:
    data = frame(n_classes=2)
    windows, _, layout = build_windows(data, sequence_config(), "seq")
    lengths = data.groupby("seq").size()
    train_lengths = lengths[data.groupby("seq")["split"].first() == "train"]
    assert layout.per == "sequence" and layout.horizon == 0
    assert layout.lookback == train_lengths.max()  # the longest training sequence
    assert layout.input_columns == ["value", VALID_COLUMN]
    assert sum(len(w) for w in windows.values()) == data["seq"].nunique()
    for split in windows.values():
        valid = split.x[:, :, -1]  # (sequences, steps)
        n_valid = valid.sum(axis=1).astype(int)
        assert (n_valid == lengths.loc[split.series].clip(upper=layout.lookback)).all()
        for row, n in zip(split.x, n_valid, strict=True):
            assert (row[:n, -1] == 1).all() and (row[n:] == 0).all()  # right padding, zeros
        shapes = data.groupby("seq")["shape"].first().loc[split.series]
        assert [layout.classes[c] for c in split.y] == shapes.tolist()


def test_label_given_on_one_row_is_the_sequence_label() -> None:
    data = frame(n_classes=2)
    data["shape"] = data["shape"].where(data.groupby("seq").cumcount() == 2)  # row 2 only
    windows, _, layout = build_windows(data, sequence_config(), "seq")
    shapes = sequence_set(n_sequences=24, min_length=5, max_length=12, n_classes=2)
    truth = shapes.groupby("seq")["shape"].first()
    for split in windows.values():
        assert [layout.classes[c] for c in split.y] == truth.loc[split.series].tolist()


def test_several_labels_in_one_sequence_name_it_and_its_rows() -> None:
    data = frame(n_classes=2)
    data.loc[(data["seq"] == "slow-001") & (data["t"] == 3), "shape"] = "fast"
    with pytest.raises(DataContractError, match=r"sequence 'slow-001' has 2 different labels"):
        build_windows(data, sequence_config(), "seq")


def test_max_length_keeps_the_last_steps_and_warns_once(caplog: Any) -> None:
    data = frame(n_classes=2)
    with caplog.at_level(logging.WARNING, logger="seqcast.windows.sequences"):
        windows, _, layout = build_windows(data, sequence_config(window={"max_length": 6}), "seq")
    assert layout.lookback == 6
    longer = int((data.groupby("seq").size() > 6).sum())
    assert [r.getMessage() for r in caplog.records if "keep only" in r.getMessage()] == [
        f"{longer} sequence(s) longer than window.max_length (6 steps; up to 12) keep only "
        "their last 6 steps"
    ]
    first = windows["train"].series[0]
    rows = data[data["seq"] == first]
    scaled = windows["train"].x[0, : min(6, len(rows)), 0]
    raw = rows["value"].to_numpy()[-min(6, len(rows)) :]
    assert np.corrcoef(scaled, raw)[0, 1] == pytest.approx(1.0)  # the last steps, in order


def test_scaling_statistics_ignore_padding() -> None:
    data = frame(n_classes=2)
    windows, scaler, _ = build_windows(data, sequence_config(), "seq")
    train_rows = data[data["seq"].isin(windows["train"].series)]["value"].to_numpy()
    assert scaler.global_stats.mean[0] == pytest.approx(train_rows.mean(), rel=1e-6)
    assert scaler.global_stats.std[0] == pytest.approx(train_rows.std(), rel=1e-6)


def test_step_window_settings_are_refused_for_whole_sequences() -> None:
    with pytest.raises(ConfigError, match="window.lookback, window.stride do"):
        sequence_config(window={"lookback": 10, "stride": 10})
    with pytest.raises(ConfigError, match="set split.by to series"):
        sequence_config(split={"by": "time", "column": None})


def test_derived_contract_asks_one_row_per_sequence_and_an_optional_label() -> None:
    contract = derive_contract(sequence_config())
    assert contract.min_rows == 1
    assert contract.columns["shape"].nullable
    assert contract.columns["split"].type == "string"


def test_padding_values_and_length_do_not_change_predictions() -> None:
    from seqcast.modeling.networks import build_model

    _, _, layout = build_windows(frame(n_classes=2), sequence_config(), "seq")
    model = build_model(layout, sequence_config().model.model_copy(update={"units": [6, 5]}))
    rng = np.random.default_rng(0)
    lengths = np.array([3, 7, 12])
    steps = 12

    def padded(pad_value: float, extra: int) -> np.ndarray:
        x = np.full((3, steps + extra, 2), pad_value, np.float32)  # (batch, steps, features+1)
        x[..., -1] = 0.0
        for i, n in enumerate(lengths):
            x[i, :n, 0] = rng_values[i, :n]
            x[i, :n, -1] = 1.0
        return x

    rng_values = rng.normal(size=(3, steps)).astype(np.float32)
    reference = model.predict(padded(0.0, 0), verbose=0)
    assert np.allclose(model.predict(padded(999.0, 0), verbose=0), reference, atol=1e-6)
    assert np.allclose(model.predict(padded(0.0, 9), verbose=0), reference, atol=1e-6)
    assert np.allclose(model.predict(padded(-999.0, 9), verbose=0), reference, atol=1e-6)
    unmasked = padded(999.0, 0)
    unmasked[..., -1] = 1.0  # the same values read as data do change the output
    assert not np.allclose(model.predict(unmasked, verbose=0), reference, atol=1e-3)


def test_class_sorted_ids_give_every_class_to_train_and_val() -> None:
    ids = [f"{c}-{i:02d}" for c in "abc" for i in range(10)]  # sorted by class
    strata = {s: s[0] for s in ids}
    splits = assign_splits(ids, 0.2, 0.2, seed=3, strata=strata)
    for split in ("train", "val", "test"):
        assert {strata[s] for s, v in splits.items() if v == split} == {"a", "b", "c"}
    assert splits == assign_splits(ids, 0.2, 0.2, seed=3, strata=strata)  # seeded
    assert splits != assign_splits(ids, 0.2, 0.2, seed=4, strata=strata)


def test_split_column_is_honoured_exactly_and_val_is_drawn_from_train() -> None:
    data = frame(n_classes=3, n_sequences=30)
    data.loc[data["seq"].isin(["fast-000", "burst-000", "slow-000"]), "split"] = "val"
    windows, _, _ = build_windows(data, sequence_config(), "seq")
    given = data.groupby("seq")["split"].first()
    assert sorted(windows["val"].series) == ["burst-000", "fast-000", "slow-000"]
    assert set(windows["test"].series) == set(given[given == "test"].index)
    without_val = frame(n_classes=3, n_sequences=30)
    windows, _, layout = build_windows(without_val, sequence_config(), "seq")
    drawn = {layout.classes[c] for c in windows["val"].y}
    assert drawn == {"slow", "fast", "burst"}  # stratified draw from the train sequences
    assert set(windows["test"].series) == set(given[given == "test"].index)


def test_a_bad_split_value_names_the_sequence() -> None:
    data = frame(n_classes=2)
    data.loc[data["seq"] == "fast-002", "split"] = "holdout"
    with pytest.raises(DataContractError, match=r"series 'fast-002' holds the value\(s\)"):
        build_windows(data, sequence_config(), "seq")


def test_fifty_sequences_train_long_enough_to_learn() -> None:
    spec = sequence_config(model={"epochs": None, "batch_size": None, "patience": None}).model
    plan = size_sequence_training(spec, 50)
    assert 8 <= plan.batch_size <= 16 and plan.steps_per_epoch >= 4
    assert plan.epochs == 100 and 10 <= plan.patience <= 15
    assert "50 training sequences" in plan.reason
    large = size_sequence_training(spec, 5_000)
    assert large.batch_size == 64 and large.epochs < 100


def test_a_below_majority_classifier_is_refused() -> None:
    majority = {"accuracy": 0.8, "balanced_accuracy": 0.5, "macro_f1": 0.444}
    below = {"accuracy": 0.7, "balanced_accuracy": 0.6, "macro_f1": 0.6}  # better macro-F1
    decision = decide_classifier(
        {"model": below, "majority_class": majority}, None, "macro_f1", 0.01
    )
    assert not decision.promote and decision.winner is None
    assert "accuracy 0.7000 vs 0.8000" in decision.reason
    constant = {"accuracy": 0.8, "balanced_accuracy": 0.5, "macro_f1": 0.444}  # = majority
    assert not decide_classifier(
        {"model": constant, "majority_class": majority}, None, "macro_f1", 0.01
    ).promote
    good = {"accuracy": 0.9, "balanced_accuracy": 0.85, "macro_f1": 0.86}
    assert decide_classifier(
        {"model": good, "majority_class": majority}, None, "macro_f1", 0.01
    ).promote
    champion = {"accuracy": 0.9, "balanced_accuracy": 0.86, "macro_f1": 0.862}
    kept = decide_classifier(
        {"model": good, "majority_class": majority, "champion": champion}, "v1", "macro_f1", 0.01
    )
    assert not kept.promote and "stays champion" in kept.reason


def test_a_test_file_is_the_test_split_and_val_is_drawn_from_the_other(tmp_path: Any) -> None:
    from seqcast.data.ingest import SOURCE_TEST, snapshot_source
    from seqcast.errors import SourceError
    from seqcast.io import storage

    data = frame(n_classes=2).drop(columns=["split"])
    test_ids = data["seq"].isin(["slow-000", "slow-001", "fast-000"])
    data[~test_ids].to_csv(tmp_path / "train.csv", index=False)
    data[test_ids].to_csv(tmp_path / "test.csv", index=False)
    config = sequence_config(
        source={"path": str(tmp_path / "train.csv"), "test_path": str(tmp_path / "test.csv")},
        split={"by": "series", "column": None, "test": 0.5},
    )
    snapshot = snapshot_source(config.source, str(tmp_path / "root"))
    raw = storage.read_parquet(snapshot.uri).to_pandas()
    assert set(raw.loc[raw[SOURCE_TEST] == "1", "seq"]) == {"slow-000", "slow-001", "fast-000"}
    assert len(snapshot.files) == 2

    data[SOURCE_TEST] = np.where(test_ids, "1", "0")
    windows, _, layout = build_windows(data, config, "seq")
    assert sorted(windows["test"].series) == ["fast-000", "slow-000", "slow-001"]
    assert {layout.classes[c] for c in windows["val"].y} == {"slow", "fast"}  # stratified

    data[test_ids].assign(seq="fast-005").to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(SourceError, match="fast-005"):
        snapshot_source(config.source, str(tmp_path / "root"))
