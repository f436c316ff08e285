"""The 1-nearest-neighbour challenger of a whole-sequence classifier (``window.per: sequence``).

1-NN with DTW is the time-series classification archive's standard baseline, and on small
sets (tens of training sequences) it beats a network trained from scratch. Its "model" is
the training sequences themselves, in the same scaled units the network reads (per-feature
scaling is one affine map per feature: for one feature it changes no neighbour, for several it
keeps one large-valued feature from deciding alone; the archive's 1-NN uses the values as
given, which the archive has already z-normalised per sequence).

Every dimension of a multivariate set counts in one distance (the "dependent" form: one warping
path for all dimensions). Sequences of unequal length are first resampled linearly to one
length (`common_length`: the padded length, at most `MAX_STEPS`); they are read from the
stored windows, which hold every step (``window.max_steps`` pools inside the network only,
`seqcast.modeling.networks.StepPool`), so the 1-NN keeps its own bound. DTW (Sakoe-Chiba band of
`BAND` x length) is vectorised over all (test, train) pairs and one anti-diagonal of the cost
matrix at a time, pure numpy, float32, in chunks of test sequences so memory stays under
`PAIR_BUDGET` cells per buffer. Cost: test x train x length x (2 x band x length) cell updates,
e.g. 175 x 36 sequences of 251 steps is about 80 M cells, a few seconds on one core.

The distance is chosen from the training data (``evaluate.nearest_neighbour: auto``,
`choose_metric`), as the archive's own "learned window" baseline tunes its DTW window on the
training set: leave-one-out 1-NN accuracy over the neighbours for Euclidean and for DTW, the
higher wins, DTW on a tie (it is the stronger distance on most of the archive's sets). Neither
distance wins everywhere: a class told by *where* something happens is blurred by DTW's
shift invariance (ArrowHead's test set: Euclidean 0.80, DTW 0.72), one told by a shape at
varying times needs it (BasicMotions: DTW 0.975, Euclidean 0.60). The choice costs one neighbours x
neighbours matrix per distance, at the same resampled length.

`MAX_STEPS` (256) was checked against full length on ACSF1 (1,460 steps, 100 x 100 official
split, the benchmark's peer code): 1-NN DTW 0.64 resampled to 256 (0.7 s), 0.66 at 512
(3.5 s), 0.63 at full length (29 s); Euclidean 0.57 / 0.55 / 0.54. Resampling costs no
accuracy there and saves 40x, so the cap stays a fixed 256.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

BAND = 0.1
"""Sakoe-Chiba band half-width as a share of the length (the usual 10%; not tuned)."""

PAIR_BUDGET = 12_000_000
"""float32 cells per DTW diagonal buffer; bounds memory at about 3 x 48 MB."""

MAX_STEPS = 256
"""Longest common length the 1-NN compares (longer sequences are resampled down): DTW's
cost grows with the square of the length."""

METRICS = ("dtw", "euclidean")
AUTO = "auto"
"""The `fit_neighbours` setting that picks the metric by leave-one-out (`choose_metric`)."""


def resample(values: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Every (steps, dims) sequence linearly resampled to ``length`` steps.

    Returns:
        (sequences, length, dims) float32.
    """
    out = np.empty((len(values), length, values[0].shape[1]), dtype=np.float32)
    grid = np.linspace(0.0, 1.0, length)
    for s, v in enumerate(values):
        if len(v) == length:
            out[s] = v
            continue
        own = np.linspace(0.0, 1.0, len(v))
        for d in range(v.shape[1]):
            out[s, :, d] = np.interp(grid, own, v[:, d])
    return out


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
    """(test, train) squared DTW distances, Sakoe-Chiba band ``band`` x length (at least 1).

    Both arrays are (sequences, steps, dims) of one length; test sequences go in chunks so a
    diagonal buffer holds at most `PAIR_BUDGET` cells.
    """
    if len(test) == 0:
        return np.zeros((0, len(train)), np.float32)
    n = test.shape[1]
    window = max(1, math.ceil(band * n))
    chunk = max(1, PAIR_BUDGET // (len(train) * (n + 1)))
    blocks = [_dtw_block(test[s : s + chunk], train, window) for s in range(0, len(test), chunk)]
    return np.concatenate(blocks, axis=0)


def self_dtw_distances(train: np.ndarray, band: float = BAND) -> np.ndarray:
    """(n, n) squared DTW distances within one set: DTW with a symmetric band is symmetric,
    so each chunk of rows is compared only with itself and the rows after it (56% of the
    cost of `dtw_distances(train, train)`), and the upper triangle is mirrored."""
    n, steps = train.shape[:2]
    window = max(1, math.ceil(band * steps))
    # At least 8 chunks: one chunk would compare every pair, 8 compare 56% of them.
    chunk = max(1, min(PAIR_BUDGET // (n * (steps + 1)), math.ceil(n / 8)))
    out = np.zeros((n, n), np.float32)
    for s in range(0, n, chunk):
        out[s : s + chunk, s:] = _dtw_block(train[s : s + chunk], train[s:], window)
    upper = np.triu(out, 1)
    return upper + upper.T + np.diag(np.diag(out))


def pairwise(test: np.ndarray, train: np.ndarray, metric: str, band: float = BAND) -> np.ndarray:
    """(test, train) distances of one ``metric`` ("dtw" or "euclidean")."""
    if metric == "euclidean":
        return euclidean_distances(test, train)
    return dtw_distances(test, train, band)


def loo_accuracy(distances: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out 1-NN accuracy from a square (n, n) distance matrix of one set: each
    sequence is classified by its nearest *other* sequence (first on ties)."""
    if len(labels) < 2:
        return 0.0  # no other sequence to be the neighbour
    own = distances.astype(np.float64, copy=True)
    np.fill_diagonal(own, np.inf)
    labels = np.asarray(labels)
    return float(np.mean(labels[np.argmin(own, axis=1)] == labels))


def choose_metric(
    train: np.ndarray, labels: np.ndarray, band: float = BAND
) -> tuple[str, dict[str, float]]:
    """The metric with the higher leave-one-out 1-NN accuracy on ``train`` (sequences, length,
    dims), DTW on a tie, and both accuracies (``{"dtw": .., "euclidean": ..}``)."""
    scores = {
        "dtw": loo_accuracy(self_dtw_distances(train, band), labels),
        "euclidean": loo_accuracy(euclidean_distances(train, train), labels),
    }
    return ("euclidean" if scores["euclidean"] > scores["dtw"] else "dtw"), scores


def nearest_labels(distances: np.ndarray, train_labels: Sequence[str]) -> list[str]:
    """The label of each test sequence's nearest training sequence (first on ties)."""
    labels = np.asarray(train_labels)
    return labels[np.argmin(distances, axis=1)].tolist()


def real_steps(inputs: np.ndarray) -> list[np.ndarray]:
    """Each padded sequence's own steps: (sequences, steps, features + 1), the last column
    1 on real steps (`seqcast.windows.sequences.padded_inputs`) -> [(steps_i, features)]."""
    return [x[x[:, -1] > 0.5, :-1] for x in inputs]


def common_length(padded_steps: int) -> int:
    """The length every sequence is resampled to: the padded length, at most `MAX_STEPS`."""
    return min(padded_steps, MAX_STEPS)


@dataclass(frozen=True)
class Neighbours:
    """A fitted 1-NN: the training sequences (scaled, resampled) and their class ids.

    Attributes:
        train: (sequences, length, features) float32.
        labels: (sequences,) int class ids (indices into the layout's classes).
        n_classes: number of classes the probabilities have.
        metric: "dtw" or "euclidean".
        band: Sakoe-Chiba band share (DTW).
        loo_accuracy: leave-one-out 1-NN accuracy of each metric on ``train`` when the metric
            was chosen by it (`choose_metric`), else empty: why this metric.
    """

    train: np.ndarray
    labels: np.ndarray
    n_classes: int
    metric: str
    band: float = BAND
    loo_accuracy: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"`metric` must be one of {METRICS}. Received: metric={self.metric!r}")
        if len(self.train) == 0:
            raise ValueError("a 1-NN needs at least one training sequence. Received: 0")

    def distances(self, inputs: np.ndarray) -> np.ndarray:
        """(sequences, train) distances of padded ``inputs`` (sequences, steps, features + 1)."""
        test = resample(real_steps(inputs), self.train.shape[1]) if len(inputs) else self.train[:0]
        return pairwise(test, self.train, self.metric, self.band)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(sequences, classes): 1.0 for the nearest training sequence's class, 0 elsewhere."""
        nearest = self.labels[np.argmin(self.distances(inputs), axis=1)]
        out = np.zeros((len(inputs), self.n_classes), np.float32)
        out[np.arange(len(inputs)), nearest] = 1.0
        return out

    def to_bytes(self) -> bytes:
        """The fit as ``.npz`` bytes (what a nearest_neighbour version stores)."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            train=self.train,
            labels=self.labels.astype(np.int64),
            n_classes=np.int64(self.n_classes),
            metric=np.str_(self.metric),
            band=np.float64(self.band),
            loo_metrics=np.array(list(self.loo_accuracy), dtype=np.str_),
            loo_accuracy=np.array(list(self.loo_accuracy.values()), dtype=np.float64),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Neighbours:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            loo = (  # absent from versions stored before the metric was chosen
                dict(zip(f["loo_metrics"].tolist(), f["loo_accuracy"].tolist(), strict=True))
                if "loo_metrics" in f
                else {}
            )
            return cls(
                train=f["train"],
                labels=f["labels"],
                n_classes=int(f["n_classes"]),
                metric=str(f["metric"]),
                band=float(f["band"]),
                loo_accuracy=loo,
            )


def fit_neighbours(
    inputs: np.ndarray, labels: np.ndarray, n_classes: int, metric: str, band: float = BAND
) -> Neighbours:
    """A 1-NN from padded training ``inputs`` (sequences, steps, features + 1) and class ids,
    each sequence resampled to `common_length` of the padded length.

    ``metric`` "auto" picks "dtw" or "euclidean" by leave-one-out accuracy on these sequences
    (`choose_metric`); the fit keeps both accuracies.
    """
    if metric not in (*METRICS, AUTO):
        raise ValueError(f"`metric` must be one of {(*METRICS, AUTO)}. Received: metric={metric!r}")
    train = resample(real_steps(inputs), common_length(inputs.shape[1]))
    ids = np.asarray(labels, np.int64)
    loo: dict[str, float] = {}
    if metric == AUTO:
        metric, loo = choose_metric(train, ids, band)
    return Neighbours(train, ids, n_classes, metric, band, loo)
