"""The 1-NN challenger of whole-sequence classifiers (also figure 8's 1-NN peers): DTW against
the textbook recursion, and the fit that evaluation scores and a version stores."""

from __future__ import annotations

import numpy as np
import pytest

from seqcast.modeling.nearest import (
    MAX_STEPS,
    Neighbours,
    choose_metric,
    dtw_distances,
    euclidean_distances,
    fit_neighbours,
    loo_accuracy,
    nearest_labels,
    resample,
    self_dtw_distances,
)
from seqcast.windows.sequences import padded_inputs


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


def test_dtw_within_one_set_computes_half_and_mirrors_it(monkeypatch: pytest.MonkeyPatch) -> None:
    train = np.random.default_rng(4).normal(size=(7, 20, 2)).astype(np.float32)
    monkeypatch.setattr("seqcast.modeling.nearest.PAIR_BUDGET", 3 * 7 * 21)  # chunks of 3 rows
    np.testing.assert_allclose(self_dtw_distances(train), dtw_distances(train, train), rtol=1e-5)


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


def _padded(sequences: list[np.ndarray], length: int) -> np.ndarray:
    return np.stack([padded_inputs(s, length) for s in sequences])  # (n, length, features + 1)


@pytest.mark.parametrize("metric", ["dtw", "euclidean"])
def test_fit_reads_only_real_steps_and_survives_the_npz_round_trip(metric: str) -> None:
    ramp_up = np.linspace(0, 1, 6, dtype=np.float32)[:, None]
    train = _padded([ramp_up, ramp_up[::-1], ramp_up[:4]], 8)  # the third is padded by 4
    neighbours = fit_neighbours(train, np.array([0, 1, 0]), 3, metric)
    assert neighbours.train.shape == (3, 8, 1)  # resampled to the padded length
    np.testing.assert_allclose(neighbours.train[2, [0, -1], 0], [0.0, 0.6], atol=1e-6)
    again = Neighbours.from_bytes(neighbours.to_bytes())
    assert again.metric == metric and again.n_classes == 3
    test = _padded([ramp_up[::-1] + 0.05, ramp_up[:5]], 8)
    expected = np.array([[0, 1, 0], [1, 0, 0]], np.float32)  # one-hot on the neighbour's class
    np.testing.assert_array_equal(neighbours.probabilities(test), expected)
    np.testing.assert_array_equal(again.probabilities(test), expected)


def test_long_sequences_are_resampled_to_at_most_max_steps() -> None:
    train = _padded([np.arange(300, dtype=np.float32)[:, None]], 300)
    assert fit_neighbours(train, np.array([0]), 1, "dtw").train.shape == (1, MAX_STEPS, 1)


STEPS = 60  # DTW band: 6 steps


def _spikes(centres: list[int], heights: list[float], seed: int) -> np.ndarray:
    """(len(centres), STEPS, 1): one narrow spike per sequence at ``centres``, plus noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(STEPS, dtype=np.float32)
    rows = [h * np.exp(-((steps - c) ** 2) / 2) for c, h in zip(centres, heights, strict=True)]
    return (np.stack(rows) + rng.normal(0, 0.05, (len(centres), STEPS)))[..., None]


def test_leave_one_out_never_counts_a_sequence_as_its_own_neighbour() -> None:
    distances = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 2.0], [5.0, 2.0, 0.0]])
    # Nearest others: 0 -> 1, 1 -> 0, 2 -> 1; labels a, b, b: only sequence 2 is right.
    assert loo_accuracy(distances, np.array([0, 1, 1])) == pytest.approx(1 / 3)


def test_auto_picks_euclidean_when_the_class_is_where_the_spike_is() -> None:
    # Spikes 3 steps apart at fixed places: DTW's warping (band 6) lines them up.
    train = _spikes([28] * 10 + [31] * 10, [1.0] * 20, seed=0)
    labels = np.repeat([0, 1], 10)
    metric, loo = choose_metric(train, labels)
    assert metric == "euclidean"
    assert loo["euclidean"] == 1.0 and loo["dtw"] < 0.8


def test_auto_picks_dtw_when_the_class_is_a_shape_at_random_places() -> None:
    # One-step spikes: one spike (class 0) or two, 2 steps apart (class 1), each class at
    # 20, 24, ..., 36. Euclidean's nearest is the other class at the same place (distance 1,
    # against 2 or 4 to its own class 4 steps away); DTW warps the 4 steps away (band 6).
    rng = np.random.default_rng(1)
    train = rng.normal(0, 0.05, (10, STEPS, 1)).astype(np.float32)
    for i, at in enumerate(range(20, 40, 4)):
        train[i, at] += 1.0
        train[5 + i, [at, at + 2]] += 1.0
    labels = np.repeat([0, 1], 5)
    metric, loo = choose_metric(train, labels)
    assert metric == "dtw"
    assert loo["dtw"] == 1.0 and loo["euclidean"] < 0.5


def test_an_auto_fit_keeps_its_choice_and_why_through_the_npz_round_trip() -> None:
    train = _spikes([28] * 6 + [31] * 6, [1.0] * 12, seed=2)
    inputs = _padded(list(train), STEPS)
    neighbours = fit_neighbours(inputs, np.repeat([0, 1], 6), 2, "auto")
    assert neighbours.metric == "euclidean" and set(neighbours.loo_accuracy) == {"dtw", "euclidean"}
    again = Neighbours.from_bytes(neighbours.to_bytes())
    assert (again.metric, again.loo_accuracy) == (neighbours.metric, neighbours.loo_accuracy)
    test = _padded(list(_spikes([28, 31, 31], [1.0] * 3, seed=3)), STEPS)
    np.testing.assert_array_equal(again.probabilities(test).argmax(1), [0, 1, 1])
    assert fit_neighbours(inputs, np.repeat([0, 1], 6), 2, "dtw").loo_accuracy == {}


def test_an_unknown_metric_is_named() -> None:
    with pytest.raises(ValueError, match="'cosine'"):
        fit_neighbours(_padded([np.zeros((3, 1), np.float32)], 3), np.array([0]), 1, "cosine")
