"""The 1-NN peers: Euclidean distance and DTW with a Sakoe-Chiba band, on the official splits.

Both use the values as the archive gives them (the archive's own baselines do), with every
dimension of a multivariate set in one distance (the "dependent" form: one warping path for all
dimensions). Sequences of unequal length (PLAID) are first resampled linearly to one length,
``resample_to`` (the same input for both peers); DTW is vectorised over all (test, train) pairs
and one anti-diagonal of the cost matrix at a time, pure numpy, float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmarks.classify.datasets import Sequences

BAND = 0.1
"""Sakoe-Chiba band half-width as a share of the length (the usual 10%; not tuned)."""

PAIR_BUDGET = 12_000_000
"""float32 cells per DTW diagonal buffer; bounds memory at about 3 x 48 MB."""


def resample(values: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Every (steps, dims) sequence linearly resampled to ``length`` steps.

    Returns:
        (sequences, length, dims) float32.
    """
    out = np.empty((len(values), length, values[0].shape[1]), dtype=np.float32)
    grid = np.linspace(0.0, 1.0, length)
    for s, v in enumerate(values):
        own = np.linspace(0.0, 1.0, len(v))
        for d in range(v.shape[1]):
            out[s, :, d] = np.interp(grid, own, v[:, d])
    return out


def as_array(part: Sequences, length: int | None) -> np.ndarray:
    """(sequences, steps, dims) float32: stacked when lengths are equal, else resampled."""
    if length is None:
        if len(set(part.lengths.tolist())) != 1:
            raise ValueError("sequences of unequal length need `resample_to`")
        return np.stack(part.values).astype(np.float32)
    return resample(part.values, length)


def euclidean_distances(test: np.ndarray, train: np.ndarray) -> np.ndarray:
    """(test, train) squared Euclidean distances over all steps and dims."""
    a = test.reshape(len(test), -1).astype(np.float64)
    b = train.reshape(len(train), -1).astype(np.float64)
    return (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]


def _dtw_block(a: np.ndarray, b: np.ndarray, window: int) -> np.ndarray:
    """Banded DTW between every sequence of ``a`` (T, n, dims) and ``b`` (R, n, dims).

    Cells (i, j) of the cost matrix with i + j = k form anti-diagonal k; a diagonal depends only
    on the two before it, so each is one vectorised step over all pairs. Buffers are indexed by
    i (0..n): D[i-1, j-1] is diagonal k-2 at i-1, D[i-1, j] and D[i, j-1] diagonal k-1 at i-1
    and i.
    """
    n = a.shape[1]
    shape = (len(a), len(b), n + 1)  # (test, train, i)
    prev2 = np.full(shape, np.inf, dtype=np.float32)
    prev1 = np.full(shape, np.inf, dtype=np.float32)
    cur = np.full(shape, np.inf, dtype=np.float32)
    prev2[:, :, 0] = 0.0  # D[0, 0]
    for k in range(2, 2 * n + 1):
        lo = max(1, k - n, math.ceil((k - window) / 2))
        hi = min(n, k - 1, (k + window) // 2)
        i = np.arange(lo, hi + 1)
        diff = a[:, None, i - 1, :] - b[None, :, k - i - 1, :]  # (test, train, cells, dims)
        cost = np.einsum("trcd,trcd->trc", diff, diff)
        best = np.minimum(
            np.minimum(prev2[:, :, lo - 1 : hi], prev1[:, :, lo - 1 : hi]), prev1[:, :, lo : hi + 1]
        )
        cur[:, :, lo : hi + 1] = cost + best
        cur[:, :, lo - 1] = np.inf  # cells just outside the band read as unreachable later
        if hi + 1 <= n:
            cur[:, :, hi + 1] = np.inf
        prev2, prev1, cur = prev1, cur, prev2
    return prev1[:, :, n]


def dtw_distances(test: np.ndarray, train: np.ndarray, band: float = BAND) -> np.ndarray:
    """(test, train) squared DTW distances, Sakoe-Chiba band ``band`` x length (at least 1)."""
    n = test.shape[1]
    window = max(1, math.ceil(band * n))
    chunk = max(1, PAIR_BUDGET // (len(train) * (n + 1)))
    blocks = [_dtw_block(test[s : s + chunk], train, window) for s in range(0, len(test), chunk)]
    return np.concatenate(blocks, axis=0)


def nearest_labels(distances: np.ndarray, train_labels: Sequence[str]) -> list[str]:
    """The label of each test sequence's nearest training sequence (first on ties)."""
    labels = np.asarray(train_labels)
    return labels[np.argmin(distances, axis=1)].tolist()
