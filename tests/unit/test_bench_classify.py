"""Figure 8's harness: the .ts reader, the long table, the carve and the config (no training
here; the 1-NN peers are `seqcast.modeling.nearest`, tested in test_nearest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.classify import report
from benchmarks.classify.bare_keras import stratified_carve
from benchmarks.classify.datasets import SETS, Sequences, long_table, parse_ts
from benchmarks.classify.seqcast_run import archive_config
from seqcast.config import config_from_dict

TS = """#\ufeff comment
% another comment
@problemName Tiny
@univariate false
@equalLength false
@classLabel true a b
@data
1,2,3:4,5,6:a
7,8:9,10:b
"""


def test_parse_ts_reads_dimensions_unequal_lengths_and_labels() -> None:
    parsed = parse_ts(TS)
    assert parsed.labels == ["a", "b"]
    assert parsed.lengths.tolist() == [3, 2]
    assert parsed.dims == 2
    np.testing.assert_array_equal(parsed.values[0], [[1, 4], [2, 5], [3, 6]])  # (steps, dims)


def test_parse_ts_names_the_line_of_ragged_dimensions() -> None:
    with pytest.raises(ValueError, match="line 3: dimensions of unequal length"):
        parse_ts("@data\n1,2:3,4:a\n1,2:3:b\n", "x.ts")
    with pytest.raises(ValueError, match="no @data"):
        parse_ts("@problemName x\n", "x.ts")


def test_long_table_has_one_row_per_step_with_split_and_label() -> None:
    train = parse_ts(TS)
    test = Sequences([np.arange(4.0).reshape(2, 2)], ["a"])
    table = long_table(train, test)
    assert table.columns.tolist() == ["seq", "step", "dim_0", "dim_1", "label", "split"]
    assert len(table) == 3 + 2 + 2
    per_seq = table.groupby("seq").agg(split=("split", "unique"), label=("label", "unique"))
    assert per_seq.loc["train-0001", "label"].tolist() == ["b"]
    assert per_seq.loc["test-0000", "split"].tolist() == ["test"]
    assert table.loc[table.seq == "train-0001", "step"].tolist() == [0, 1]


def test_stratified_carve_takes_each_class_and_follows_the_seed() -> None:
    labels = ["a"] * 20 + ["b"] * 10 + ["c"] * 3  # sorted by class, like archive files
    carve = stratified_carve(labels, 0.1, seed=0)
    assert sorted(labels[i] for i in carve) == ["a", "a", "b", "c"]
    assert carve.tolist() == stratified_carve(labels, 0.1, seed=0).tolist()
    assert carve.tolist() != stratified_carve(labels, 0.1, seed=1).tolist()


def test_archive_config_is_a_valid_sequence_classifier_without_model_settings(
    tmp_path: Path,
) -> None:
    raw = archive_config(SETS["basicmotions"], tmp_path / "x.csv", 6, tmp_path / "root")
    assert "model" not in raw and "lookback" not in raw["window"]
    config = config_from_dict(raw)
    assert config.per_sequence
    assert config.split.by == "column" and config.split.column == "split"
    assert config.source.features == [f"dim_{d}" for d in range(6)]


def test_the_seeds_column_marks_a_1nn_champion_with_its_distance() -> None:
    runs = [
        {"accuracy": 0.8, "champion_kind": "nearest_neighbour", "nearest": {"metric": "euclidean"}},
        {"accuracy": 0.9, "champion_kind": "network", "nearest": {"metric": "dtw"}},
        {"accuracy": 0.7, "champion_kind": "nearest_neighbour"},  # recorded before the choice
        {"accuracy": 0.3, "champion_kind": None},
    ]
    assert (
        report._seeds({"runs": runs}) == "0.800 (1-NN ED), 0.900, 0.700 (1-NN), 0.300 (no champion)"
    )
