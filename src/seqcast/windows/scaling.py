"""Z-score scaling fitted on training rows only, stored as JSON beside the model.

Statistics are kept per series (a global model over series of different scales) and over
all training rows (for series the model has not seen, and for a split by series). The
window step fits them one series at a time (`RunningStats`), see `seqcast.windows.build`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

_MIN_STD = 1e-8


@dataclass(frozen=True)
class Stats:
    mean: list[float]
    std: list[float]


@dataclass(frozen=True)
class Scaler:
    """Per-column z-score statistics: per series where fitted, else global."""

    kind: Literal["series", "global", "none"]
    columns: list[str]
    global_stats: Stats
    series_stats: dict[str, Stats] = field(default_factory=dict)

    def stats_for(self, series: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) arrays of shape (columns,) for one series."""
        if self.kind == "none":
            n = len(self.columns)
            return np.zeros(n, np.float32), np.ones(n, np.float32)
        stats = self.series_stats.get(series, self.global_stats)
        return np.asarray(stats.mean, np.float32), np.asarray(stats.std, np.float32)

    def transform(self, values: np.ndarray, series: str) -> np.ndarray:
        """Scale ``values`` of shape (..., columns) of one series."""
        mean, std = self.stats_for(series)
        return ((values - mean) / std).astype(np.float32)

    def inverse(self, values: np.ndarray, series: str, columns: list[str]) -> np.ndarray:
        """Map scaled ``values`` of shape (..., len(columns)) back to original units."""
        mean, std = self.stats_for(series)
        idx = [self.columns.index(c) for c in columns]
        return values * std[idx] + mean[idx]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scaler:
        return cls(
            kind=data["kind"],
            columns=list(data["columns"]),
            global_stats=Stats(**data["global_stats"]),
            series_stats={k: Stats(**v) for k, v in data["series_stats"].items()},
        )


@dataclass(frozen=True)
class Moments:
    """Row count, per-column mean and sum of squared deviations of one batch of rows.

    Plain floats, so a shard can hand them to the merge step as JSON (which round-trips
    floats exactly): merged in the same order, they give bit-identical statistics.
    """

    count: int
    mean: list[float]
    m2: list[float]

    def stats(self) -> Stats:
        """Mean and population std of these rows alone (a constant column gets std 1)."""
        std = np.sqrt(np.asarray(self.m2) / self.count)
        std = np.where(std < _MIN_STD, 1.0, std)
        return Stats(mean=list(self.mean), std=[float(v) for v in std])


def moments(values: np.ndarray) -> Moments | None:
    """The moments of ``values`` of shape (rows, columns); None if it holds no value."""
    if values.size == 0:
        return None
    mean = values.mean(axis=0)
    m2 = ((values - mean) ** 2).sum(axis=0)
    return Moments(len(values), [float(v) for v in mean], [float(v) for v in m2])


class RunningStats:
    """Per-column count, mean and sum of squared deviations, merged batch by batch.

    The window step sees training rows one series at a time; merging each series' moments
    (Chan et al.'s parallel update) gives the same mean and population std as one pass over
    all rows, in memory that does not grow with the number of rows or series.
    """

    def __init__(self, n_columns: int) -> None:
        self.count = np.zeros(n_columns, np.float64)
        self.mean = np.zeros(n_columns, np.float64)
        self.m2 = np.zeros(n_columns, np.float64)

    def add(self, values: np.ndarray) -> Stats | None:
        """Merge ``values`` of shape (rows, columns), all finite.

        Returns:
            The statistics of ``values`` alone (None if empty), so a caller that also
            wants them (per-series scaling) does not compute them twice.
        """
        part = moments(values)
        if part is None:
            return None
        self.merge(part)
        return part.stats()

    def merge(self, part: Moments) -> None:
        """Merge the moments of rows seen elsewhere (another shard of series)."""
        count = np.full(len(part.mean), float(part.count))
        mean = np.asarray(part.mean, np.float64)
        m2 = np.asarray(part.m2, np.float64)
        total = self.count + count
        delta = mean - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, count / np.maximum(total, 1), 0.0)
            self.m2 = self.m2 + m2 + delta**2 * self.count * share
        self.mean = self.mean + delta * share
        self.count = total

    def stats(self) -> Stats:
        """Mean and population std of everything merged (a constant column gets std 1)."""
        std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        std = np.where(std < _MIN_STD, 1.0, std)
        return Stats(mean=[float(v) for v in self.mean], std=[float(v) for v in std])
