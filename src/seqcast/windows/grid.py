"""Place one series on its regular time grid: find gaps, fill the short ones, mark runs.

The window step reads a series as it was validated (sorted rows, UTC timestamps) and
needs it on a fixed step, so a window is a run of consecutive steps. Each series' grid
starts at its first timestamp and advances by the configured frequency (or the most
common step); a timestamp off that grid is a contract error, a missing step is a gap.
Gaps of at most ``fill_gaps`` steps are filled (linear or last value); a longer gap
ends a run, and no window spans two runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqcast.errors import DataContractError

NS_PER_SECOND = 1_000_000_000


@dataclass
class SeriesRows:
    """One series' rows in time order, as the validated table holds them.

    stamps: (rows,) int64 nanoseconds since the epoch, UTC.
    values: (rows, n_inputs) float64 model inputs (forecast: targets first, then features).
    labels: (rows,) object class labels (classify only), else None.
    future: (rows, n_future) float64 known-future covariate columns.
    static: (rows, n_static) float64 static feature columns (constant within the series).
    """

    series: str
    stamps: np.ndarray
    values: np.ndarray
    labels: np.ndarray | None
    future: np.ndarray
    static: np.ndarray

    def __len__(self) -> int:
        return len(self.stamps)


@dataclass
class GridRows:
    """A series on its grid: only observed or filled steps are kept.

    position: (rows,) int64 step number on the grid (0 = the series' first timestamp).
    run: (rows,) int64 run number; it increases after every unfilled gap.
    filled: (rows,) bool, True where the step was a filled gap.
    n_steps: length of the grid from the first to the last timestamp, gaps included.
    """

    rows: SeriesRows
    position: np.ndarray
    run: np.ndarray
    filled: np.ndarray
    n_steps: int


def step_nanoseconds(frequency: str | None, inferred_seconds: float | None) -> int:
    """The grid step: the configured frequency, else the inferred most common step."""
    if frequency is not None:
        return int(pd.to_timedelta(frequency).value)
    if inferred_seconds is None or inferred_seconds <= 0:
        raise DataContractError(
            "cannot infer the time step: every series has a single row. Set source.frequency."
        )
    return int(round(inferred_seconds * NS_PER_SECOND))


def _stamp(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def grid_positions(rows: SeriesRows, step_ns: int) -> np.ndarray:
    """Each row's step number on the series' grid; raises on an off-grid or repeated time."""
    offsets = rows.stamps - rows.stamps[0]
    off_grid = np.flatnonzero(offsets % step_ns)
    if off_grid.size:
        first = int(off_grid[0])
        raise DataContractError(
            f"series {rows.series!r}: {off_grid.size} timestamp(s) are off its "
            f"{pd.Timedelta(step_ns)} grid that starts at {_stamp(int(rows.stamps[0]))}, "
            f"first {_stamp(int(rows.stamps[first]))}. Resample the source to one step, or "
            f"set source.frequency to the step the data has."
        )
    position = offsets // step_ns
    repeated = np.flatnonzero(np.diff(position) <= 0)
    if repeated.size:
        at = int(repeated[0]) + 1
        raise DataContractError(
            f"series {rows.series!r}: timestamps must increase; row {at} "
            f"({_stamp(int(rows.stamps[at]))}) repeats or precedes the one before it."
        )
    return position


def _observed(rows: SeriesRows) -> np.ndarray:
    """Rows whose inputs are all present (a nullable contract may let NaN through)."""
    ok = np.isfinite(rows.values).all(axis=1) & np.isfinite(rows.future).all(axis=1)
    if rows.labels is not None:
        ok &= ~pd.isna(rows.labels)
    return ok


def _fill(values: np.ndarray, known: np.ndarray, wanted: np.ndarray, method: str) -> np.ndarray:
    """Values at grid positions ``wanted`` from rows at sorted positions ``known``."""
    if method == "ffill" or values.dtype == object:
        return values[np.searchsorted(known, wanted, side="right") - 1]
    out = np.empty((len(wanted), values.shape[1]), values.dtype)
    for column in range(values.shape[1]):
        out[:, column] = np.interp(wanted, known, values[:, column])
    return out


def to_grid(rows: SeriesRows, step_ns: int, fill_gaps: int, fill_method: str) -> GridRows:
    """Regularise ``rows`` to the grid of ``step_ns``; fill gaps of <= ``fill_gaps`` steps."""
    position = grid_positions(rows, step_ns)
    keep = _observed(rows)
    if not keep.all():
        rows = _select(rows, keep)
        position = position[keep]
    if len(position) == 0:
        return GridRows(rows, position, position.copy(), np.zeros(0, bool), 0)
    missing = np.diff(position) - 1  # missing steps after each row
    fillable = np.flatnonzero((missing > 0) & (missing <= fill_gaps))
    filled = np.zeros(len(position), bool)
    if fillable.size:
        wanted = np.concatenate(
            [np.arange(position[i] + 1, position[i + 1]) for i in fillable]
        )  # the grid steps to fill
        new = SeriesRows(
            series=rows.series,
            stamps=rows.stamps[0] - position[0] * step_ns + wanted * step_ns,
            values=_fill(rows.values, position, wanted, fill_method),
            labels=None if rows.labels is None else _fill(rows.labels, position, wanted, "ffill"),
            future=_fill(rows.future, position, wanted, fill_method),
            static=np.repeat(rows.static[:1], len(wanted), axis=0),
        )
        order = np.argsort(np.concatenate([position, wanted]), kind="stable")
        rows = _concat(rows, new, order)
        position = np.concatenate([position, wanted])[order]
        filled = np.concatenate([filled, np.ones(len(wanted), bool)])[order]
    run = np.concatenate([[0], np.cumsum(np.diff(position) > 1)]).astype(np.int64)
    return GridRows(rows, position, run, filled, int(position[-1]) + 1)


def rows_before(rows: SeriesRows, stamp_ns: int) -> SeriesRows:
    """The rows stamped before ``stamp_ns`` (a backtest fold ends there)."""
    return _select(rows, rows.stamps < stamp_ns)


def _select(rows: SeriesRows, mask: np.ndarray) -> SeriesRows:
    return SeriesRows(
        series=rows.series,
        stamps=rows.stamps[mask],
        values=rows.values[mask],
        labels=None if rows.labels is None else rows.labels[mask],
        future=rows.future[mask],
        static=rows.static[mask],
    )


def _concat(a: SeriesRows, b: SeriesRows, order: np.ndarray) -> SeriesRows:
    def join(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x, y])[order]

    return SeriesRows(
        series=a.series,
        stamps=join(a.stamps, b.stamps),
        values=join(a.values, b.values),
        labels=None if a.labels is None or b.labels is None else join(a.labels, b.labels),
        future=join(a.future, b.future),
        static=join(a.static, b.static),
    )


class StepCounter:
    """Counts the steps between consecutive timestamps over many series, in bounded memory."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def add(self, stamps: np.ndarray) -> None:
        steps, counts = np.unique(np.diff(stamps), return_counts=True)
        for step, count in zip(steps.tolist(), counts.tolist(), strict=True):
            if step > 0:
                self.counts[step] = self.counts.get(step, 0) + count

    def most_common_seconds(self) -> float | None:
        """The most common step in seconds (the smallest on a tie), or None if none seen."""
        if not self.counts:
            return None
        step = min(self.counts, key=lambda s: (-self.counts[s], s))
        return step / NS_PER_SECOND
