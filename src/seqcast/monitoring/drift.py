"""Input drift: do tonight's prediction inputs look like the data the champion trained on?

At registration `reference_profile` streams the validated training table once and keeps,
per input feature, a quantile sketch (101 quantiles of a bounded, seeded uniform sample:
memory does not grow with the table) and the series it saw. Each prediction run compares
its input rows with that profile (`check_table`, `drift_report`), per feature:

- the population stability index, ``PSI = sum((new - ref) * ln(new / ref))`` over 10 bins
  cut at the reference deciles (a bin's share clipped at `EPSILON` so an empty bin counts
  as a large change, not an infinity);
- the two-sample Kolmogorov-Smirnov statistic ``max |F_ref(x) - F_new(x)|``, with
  ``F_ref`` interpolated linearly between the stored quantiles (`reference_cdf`);

and the share of predicted series that the profile never saw. Each is compared with its
`MonitorSpec` threshold (``drift_psi``, ``drift_ks``, ``unseen_series``; above it is a
breach). Both statistics are a few lines of numpy, tested against scipy's.

PSI and KS need enough rows to mean anything: with the 10 bins of PSI and ``n`` new values,
sampling noise alone gives PSI about ``9 / n`` (0.09 at 100 rows) on an unchanged
distribution. A prediction run reads each series' last ``lookback`` rows, so a pipeline of
few short series compares few values; the table artifact shows the rows behind each figure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqcast.config import MonitorSpec, SplitSpec
from seqcast.io import storage
from seqcast.windows.series_source import series_row_counts
from seqcast.windows.windowing import split_bounds

logger = logging.getLogger(__name__)

QUANTILES = 101
"""Quantiles a feature's sketch keeps: probabilities 0, 0.01, ..., 1."""
SAMPLE_SIZE = 20_000
"""Values per feature in the uniform sample the quantiles (and tonight's statistics) are
computed from; the sketch's error is about ``1 / sqrt(SAMPLE_SIZE)`` in probability."""
PSI_BINS = 10
EPSILON = 1e-4
"""Smallest share of a PSI bin: an empty bin counts as this share."""
BATCH_ROWS = 65_536
FORMAT = 1
"""The profile's JSON layout version."""


@dataclass(frozen=True)
class FeatureProfile:
    """One feature of the training inputs: values counted, their mean, std and quantiles
    (`QUANTILES` of them, min and max exact; empty, mean and std 0, when the feature had no
    value)."""

    count: int
    mean: float
    std: float
    quantiles: list[float]


@dataclass(frozen=True)
class Profile:
    """The reference a model's prediction inputs are compared with (``profile.json``).

    ``series``: rows profiled per series id. ``scope``: which rows were profiled
    (``train``: each series' training rows; ``all``: the whole validated table).
    """

    features: dict[str, FeatureProfile]
    series: dict[str, int]
    rows: int
    scope: str
    sample_size: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "scope": self.scope,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "features": {
                name: {
                    "count": f.count,
                    "mean": f.mean,
                    "std": f.std,
                    "quantiles": f.quantiles,
                }
                for name, f in self.features.items()
            },
            "series": self.series,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Profile:
        if document.get("format") != FORMAT:
            raise ValueError(
                f"unknown input profile format {document.get('format')!r} (this seqcast reads "
                f"format {FORMAT})"
            )
        return cls(
            features={
                name: FeatureProfile(
                    count=int(f["count"]),
                    mean=float(f["mean"]),
                    std=float(f["std"]),
                    quantiles=[float(q) for q in f["quantiles"]],
                )
                for name, f in document["features"].items()
            },
            series={str(s): int(n) for s, n in document["series"].items()},
            rows=int(document["rows"]),
            scope=str(document["scope"]),
            sample_size=int(document["sample_size"]),
            seed=int(document["seed"]),
        )


class Reservoir:
    """A uniform random sample of at most ``size`` values of a stream, fed in batches.

    Algorithm R, vectorised per batch: the value with stream index ``i`` (from 0) replaces a
    uniformly drawn slot with probability ``size / (i + 1)``, so after any number of values
    every one of them is in the sample with the same probability. NaN values are skipped.
    Also keeps the exact count, mean, variance (Chan's merge), min and max.
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        if size < 1:
            raise ValueError(f"`size` must be a positive integer. Received: size={size}")
        self.size = size
        self.rng = rng
        self.values = np.empty(0, np.float64)
        self.seen = 0
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.low = np.inf
        self.high = -np.inf

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        values = values[~np.isnan(values)]
        n = len(values)
        if n == 0:
            return
        self._moments(values)
        room = self.size - len(self.values)
        if room > 0:
            self.values = np.concatenate([self.values, values[:room]])
            self.seen += min(room, n)
            values = values[room:]
        if len(values) == 0:
            return
        index = self.seen + np.arange(len(values))
        keep = self.rng.random(len(values)) < self.size / (index + 1)
        slots = self.rng.integers(0, self.size, int(keep.sum()))
        kept = values[keep]
        # Sequentially a later value overwrites an earlier one drawn for the same slot;
        # numpy's fancy assignment does not promise an order, so keep each slot's last.
        _, last = np.unique(slots[::-1], return_index=True)
        chosen = len(slots) - 1 - last
        self.values[slots[chosen]] = kept[chosen]
        self.seen += len(values)

    def _moments(self, values: np.ndarray) -> None:
        n_old, n_new = self.count, len(values)
        mean_new = float(values.mean())
        m2_new = float(((values - mean_new) ** 2).sum())
        total = n_old + n_new
        delta = mean_new - self.mean
        self.mean += delta * n_new / total
        self.m2 += m2_new + delta * delta * n_old * n_new / total
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        self.count = total

    def profile(self) -> FeatureProfile:
        """The sample's `QUANTILES` quantiles, with the stream's exact min and max."""
        if self.count == 0:
            return FeatureProfile(count=0, mean=0.0, std=0.0, quantiles=[])  # JSON has no NaN
        quantiles = np.quantile(self.values, np.linspace(0.0, 1.0, QUANTILES))
        quantiles[0], quantiles[-1] = self.low, self.high
        return FeatureProfile(
            count=self.count,
            mean=self.mean,
            std=float(np.sqrt(self.m2 / self.count)),
            quantiles=[float(q) for q in quantiles],
        )


def _numeric_columns(uri: str, candidates: Iterable[str]) -> list[str]:
    """The candidates that are integer or floating-point columns of the Parquet file."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        schema = pq.ParquetFile(handle).schema_arrow
    found = []
    for name in dict.fromkeys(candidates):
        if name not in schema.names:
            continue  # a derived column (calendar sin/cos, sequence mask): not in the data
        kind = schema.field(name).type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            found.append(name)
    return found


@dataclass
class _Scan:
    reservoirs: dict[str, Reservoir]
    series: dict[str, int] = field(default_factory=dict)
    rows: int = 0


RowFilter = Callable[[int, int], np.ndarray | None]
"""(first row, rows) of a batch -> a boolean mask of the rows to keep, or None for all."""


def _scan(
    uri: str,
    features: Sequence[str],
    series_column: str | None,
    sample_size: int,
    seed: int,
    keep: RowFilter | None = None,
    batch_rows: int = BATCH_ROWS,
) -> _Scan:
    """One pass over ``uri`` in record batches: a reservoir per feature and the rows of each
    series (memory: one batch, the samples and the series ids)."""
    if batch_rows < 1:
        raise ValueError(f"`batch_rows` must be a positive integer. Received: {batch_rows}")
    scan = _Scan(
        {
            name: Reservoir(sample_size, np.random.default_rng([seed, number]))
            for number, name in enumerate(features)
        }
    )
    columns = [*([series_column] if series_column else []), *features]
    fs, path = storage.filesystem(uri)
    first = 0
    with fs.open(path, "rb") as handle:
        table = pq.ParquetFile(handle, pre_buffer=False)
        for batch in table.iter_batches(batch_size=batch_rows, columns=columns):
            mask = keep(first, batch.num_rows) if keep is not None else None
            first += batch.num_rows
            if mask is not None:
                batch = batch.filter(pa.array(mask))
            if batch.num_rows == 0:
                continue
            scan.rows += batch.num_rows
            for name in features:
                values = batch.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
                scan.reservoirs[name].add(values)
            if series_column:
                counts = pc.value_counts(batch.column(series_column).cast(pa.string()))
                for entry in counts.to_pylist():
                    scan.series[entry["values"]] = (
                        scan.series.get(entry["values"], 0) + entry["counts"]
                    )
    return scan


def _training_rows(uri: str, series_column: str, split: SplitSpec) -> RowFilter:
    """Rows of each series before its validation cut (`split_bounds` on its row count),
    for a table sorted by series (the validated table is)."""
    counts = np.asarray(series_row_counts(uri, series_column), np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cuts = np.asarray([split_bounds(int(n), split.val, split.test)[0] for n in counts], np.int64)

    def keep(first: int, rows: int) -> np.ndarray:
        index = np.arange(first, first + rows, dtype=np.int64)
        run = np.searchsorted(starts, index, side="right") - 1
        return np.asarray(index - starts[run] < cuts[run])

    return keep


def reference_profile(
    uri: str,
    features: Sequence[str],
    series_column: str | None,
    split: SplitSpec | None = None,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
    batch_rows: int = BATCH_ROWS,
) -> Profile:
    """Profile the training inputs in the validated table at ``uri`` (streamed in batches).

    Which rows: with a time split by fractions (``split.by: time`` and no ``test_from`` or
    ``until``), each series' rows before its validation cut, ``floor((1 - test - val) *
    rows)``: the training rows exactly for a gap-free series, a few rows off where the
    window step's grid has gaps or filled steps (it cuts on grid steps). Otherwise (a split
    of whole series, a fixed test period) the whole validated table, training, validation
    and test rows alike (``scope: all``).

    Args:
        uri: the validated Parquet table, sorted by (series, timestamp).
        features: candidate input columns (a window layout's ``input_columns``); those that
            are not numeric columns of the table (derived calendar or mask columns) are
            left out.
        series_column: the table's series column; None: no series are recorded.
        split: the pipeline's split; None profiles every row.
        sample_size: values per feature in the bounded uniform sample (`Reservoir`).
        seed: seeds the sample (the same table and seed give the same profile).
        batch_rows: rows per record batch read.
    """
    if sample_size < QUANTILES:
        raise ValueError(
            f"`sample_size` must be at least {QUANTILES}. Received: sample_size={sample_size}"
        )
    numeric = _numeric_columns(uri, features)
    skipped = [f for f in features if f not in numeric]
    if skipped:
        logger.debug("input profile of %s leaves out non-data columns %s", uri, skipped)
    by_fractions = split is not None and split.by == "time" and not (split.test_from or split.until)
    keep = None
    if split is not None and by_fractions and series_column is not None:
        keep = _training_rows(uri, series_column, split)
    scan = _scan(uri, numeric, series_column, sample_size, seed, keep, batch_rows)
    return Profile(
        features={name: scan.reservoirs[name].profile() for name in numeric},
        series=scan.series,
        rows=scan.rows,
        scope="all" if keep is None else "train",
        sample_size=sample_size,
        seed=seed,
    )


def reference_cdf(
    quantiles: Sequence[float] | np.ndarray, x: np.ndarray, left: bool = False
) -> np.ndarray:
    """``F_ref(x)`` from quantiles at evenly spaced probabilities 0 ... 1, linear between
    them: 0 below the first, 1 from the last on. A value repeated in the quantiles (a
    discrete feature) is a jump; ``left`` gives the left limit ``F_ref(x-)`` there, else the
    right-continuous value, as for an empirical CDF."""
    q = np.asarray(quantiles, np.float64)
    m = len(q)
    if m < 2:
        raise ValueError(f"`quantiles` needs at least 2 values. Received: {m}")
    p = np.linspace(0.0, 1.0, m)
    x = np.asarray(x, np.float64)
    k = np.searchsorted(q, x, side="left" if left else "right")
    inner = (k > 0) & (k < m)
    lo_index = np.clip(k - 1, 0, m - 1)
    hi_index = np.clip(k, 0, m - 1)
    lo, hi = q[lo_index], q[hi_index]
    span = np.where(inner, hi - lo, 1.0)  # hi > lo wherever the value is inner
    inside = p[lo_index] + (x - lo) / span * (p[hi_index] - p[lo_index])
    return np.where(k == 0, 0.0, np.where(k >= m, 1.0, inside))


def ks_statistic(quantiles: Sequence[float] | np.ndarray, values: np.ndarray) -> float:
    """``max |F_ref(x) - F_new(x)|`` over all x: the new values' empirical CDF against the
    reference's (`reference_cdf`). Between two new values ``F_new`` is constant and
    ``F_ref`` monotone, so the supremum is at a new value or just before one."""
    x = np.sort(np.asarray(values, np.float64))
    if len(x) == 0:
        raise ValueError("`values` is empty: no statistic without new values")
    n = len(x)
    at = np.searchsorted(x, x, side="right") / n
    before = np.searchsorted(x, x, side="left") / n
    return float(
        max(
            np.abs(reference_cdf(quantiles, x) - at).max(),
            np.abs(reference_cdf(quantiles, x, left=True) - before).max(),
        )
    )


def psi(
    quantiles: Sequence[float] | np.ndarray,
    values: np.ndarray,
    bins: int = PSI_BINS,
    epsilon: float = EPSILON,
) -> float:
    """Population stability index of ``values`` against the reference quantiles.

    Bins are cut at the reference's ``bins``-quantiles (deciles for 10; right-closed, the
    outer two open-ended), so the reference puts ``1 / bins`` in each unless its values
    repeat (cuts that coincide are merged and the reference shares read from
    `reference_cdf`). ``PSI = sum((new - ref) * ln(new / ref))``, each share at least
    ``epsilon``.
    """
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        raise ValueError("`values` is empty: no statistic without new values")
    if bins < 2:
        raise ValueError(f"`bins` must be at least 2. Received: bins={bins}")
    q = np.asarray(quantiles, np.float64)
    # The stored quantiles themselves where they fall on a cut (deciles of 101 quantiles),
    # so a value equal to a decile lands in the same bin as in the reference.
    position = np.arange(1, bins) * (len(q) - 1) / bins
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, len(q) - 1)
    cuts = np.unique(q[lower] + (position - lower) * (q[upper] - q[lower]))
    reference = np.diff(np.concatenate([[0.0], reference_cdf(q, cuts), [1.0]]))
    counts = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=len(cuts) + 1)
    new = np.maximum(counts / len(values), epsilon)
    reference = np.maximum(reference, epsilon)
    return float(((new - reference) * np.log(new / reference)).sum())


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison; ``psi`` and ``ks`` are None when either side has no value."""

    feature: str
    rows: int
    psi: float | None
    ks: float | None
    drifted: bool
    reference_mean: float | None = None
    mean: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """Every feature's PSI and KS, the unseen series, and which thresholds they breach."""

    features: list[FeatureDrift]
    series: int
    unseen: int
    unseen_share: float | None
    """None when series are not compared (no series given)."""
    unseen_breached: bool
    limits: dict[str, float]

    @property
    def drifted(self) -> list[str]:
        """Features whose PSI or KS is above its threshold."""
        return [f.feature for f in self.features if f.drifted]

    @property
    def breached(self) -> bool:
        return bool(self.drifted) or self.unseen_breached

    def rows(self) -> list[dict[str, Any]]:
        """The table artifact: one row per feature, then one for the series."""
        rows: list[dict[str, Any]] = [
            {
                "check": f.feature,
                "psi": _round(f.psi),
                "ks": _round(f.ks),
                "drifted": f.drifted,
                "rows": f.rows,
                "note": (
                    f"mean {_round(f.mean)} (training {_round(f.reference_mean)})"
                    if f.psi is not None
                    else "no values to compare"
                ),
            }
            for f in self.features
        ]
        if self.unseen_share is not None:
            rows.append(
                {
                    "check": "unseen series",
                    "psi": None,
                    "ks": None,
                    "drifted": self.unseen_breached,
                    "rows": self.series,
                    "note": f"{self.unseen} of {self.series} series not in training "
                    f"({self.unseen_share:.1%}; limit {self.limits['unseen_series']:.1%})",
                }
            )
        return rows

    def figures(self) -> dict[str, Any]:
        """The event payload: what breached, every feature's figures and the limits."""
        return {
            "drifted_features": self.drifted,
            "features": {
                f.feature: {"psi": _round(f.psi), "ks": _round(f.ks), "rows": f.rows}
                for f in self.features
            },
            "unseen_share": _round(self.unseen_share),
            "unseen_series": self.unseen,
            "series": self.series,
            "unseen_breached": self.unseen_breached,
            "limits": self.limits,
        }


def _round(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)


def drift_report(
    profile: Profile,
    columns: pd.DataFrame | Mapping[str, Any],
    series: Iterable[object] | None,
    monitor: MonitorSpec,
    features: Sequence[str] | None = None,
) -> DriftReport:
    """Compare new input values with ``profile``.

    Args:
        profile: the champion's training profile.
        columns: the new values by feature (a frame or a mapping of arrays; NaN ignored).
            A profiled feature missing here is reported with no figures, not drifted.
        series: the ids of the series predicted (each once or repeated); None: series not
            compared.
        monitor: the thresholds: a feature drifted when its PSI is above ``drift_psi`` or
            its KS above ``drift_ks``; the series when the unseen share is above
            ``unseen_series``.
        features: the profiled features to compare (default: all of them).
    """
    names = list(profile.features) if features is None else list(features)
    results = []
    for name in names:
        reference = profile.features.get(name)
        values = (
            np.asarray(columns[name], np.float64) if name in columns else np.empty(0, np.float64)
        )
        values = values[~np.isnan(values)]
        if reference is None or not reference.quantiles or len(values) == 0:
            results.append(FeatureDrift(name, len(values), None, None, False))
            continue
        stability = psi(reference.quantiles, values)
        distance = ks_statistic(reference.quantiles, values)
        results.append(
            FeatureDrift(
                feature=name,
                rows=len(values),
                psi=stability,
                ks=distance,
                drifted=stability > monitor.drift_psi or distance > monitor.drift_ks,
                reference_mean=reference.mean,
                mean=float(values.mean()),
            )
        )
    ids = None if series is None else {str(s) for s in series}
    unseen = 0 if ids is None else len(ids - profile.series.keys())
    share = None if not ids else unseen / len(ids)
    return DriftReport(
        features=results,
        series=0 if ids is None else len(ids),
        unseen=unseen,
        unseen_share=share,
        unseen_breached=share is not None and share > monitor.unseen_series,
        limits={
            "drift_psi": monitor.drift_psi,
            "drift_ks": monitor.drift_ks,
            "unseen_series": monitor.unseen_series,
        },
    )


def check_table(
    profile: Profile,
    uri: str,
    series_column: str | None,
    monitor: MonitorSpec,
    features: Sequence[str] | None = None,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
) -> DriftReport:
    """`drift_report` of the rows of the Parquet table at ``uri`` (a prediction run's
    validated input), streamed in batches: each feature's values are a bounded uniform
    sample (`Reservoir`; all of them up to ``sample_size``), the series ids all of them.
    ``series_column`` None: series not compared."""
    names = list(profile.features) if features is None else list(features)
    present = _numeric_columns(uri, names)
    scan = _scan(uri, present, series_column, sample_size, seed)
    columns = {name: scan.reservoirs[name].values for name in present}
    return drift_report(
        profile,
        columns,
        scan.series.keys() if series_column else None,
        monitor,
        features=names,
    )
