"""The 1-NN challenger of whole-sequence classifiers (also figure 8's 1-NN peers): DTW against
the textbook recursion, and the fit that evaluation scores and a version stores."""

from __future__ import annotations

import numpy as np
import pytest

from seqcast.modeling.nearest import (
    MAX_STEPS,
    Neighbours,
    dtw_distances,
    euclidean_distances,
    fit_neighbours,
    nearest_labels,
    resample,
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
