"""Figure 8's harness: the .ts reader, the long table and the 1-NN peers (no training here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.classify.bare_keras import stratified_carve
from benchmarks.classify.datasets import SETS, Sequences, long_table, parse_ts
from benchmarks.classify.peers import (
    dtw_distances,
    euclidean_distances,
    nearest_labels,
    resample,
)
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


def _dtw_reference(x: np.ndarray, y: np.ndarray, window: int) -> float:
    n = len(x)
    d = np.full((n + 1, n + 1), np.inf)
    d[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(max(1, i - window), min(n, i + window) + 1):
            cost = float(((x[i - 1] - y[j - 1]) ** 2).sum())
            d[i, j] = cost + min(d[i - 1, j - 1], d[i - 1, j], d[i, j - 1])
    return float(d[n, n])


@pytest.mark.parametrize("band", [0.1, 0.3, 1.0])
def test_vectorised_dtw_matches_the_textbook_recursion(band: float) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 20, 2)).astype(np.float32)
    b = rng.normal(size=(4, 20, 2)).astype(np.float32)
    window = max(1, int(np.ceil(band * 20)))
    expected = [[_dtw_reference(x, y, window) for y in b] for x in a]
    np.testing.assert_allclose(dtw_distances(a, b, band), expected, rtol=1e-4)


def test_dtw_finds_a_shifted_copy_that_euclidean_misses() -> None:
    steps = np.arange(40, dtype=np.float32)
    bump = np.exp(-((steps - 20) ** 2) / 4)
    train = np.stack([np.roll(bump, 3), np.zeros(40, np.float32) + 0.2])[..., None]
    test = bump[None, :, None]
    assert nearest_labels(euclidean_distances(test, train), ["bump", "flat"]) == ["flat"]
    assert nearest_labels(dtw_distances(test, train), ["bump", "flat"]) == ["bump"]


def test_resample_keeps_the_ends_and_a_linear_ramp() -> None:
    out = resample([np.arange(5.0)[:, None], np.arange(3.0)[:, None]], 9)
    assert out.shape == (2, 9, 1)
    np.testing.assert_allclose(out[0, :, 0], np.linspace(0, 4, 9))
    np.testing.assert_allclose(out[1, [0, -1], 0], [0, 2])


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
