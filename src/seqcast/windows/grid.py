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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seqcast.errors import DataContractError
from seqcast.frequency import (
    NS_PER_SECOND,
    Frequency,
    fixed,
    infer_frequency,
    parse_frequency,
    steps_after,
)
from seqcast.frequency import (
    default_season as default_season,  # re-exported: evaluation's seasonal lag
)

if TYPE_CHECKING:
    from seqcast.windows.windowing import WindowLayout


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
    split: np.ndarray | None = None
    """(rows,) values of the split column (``split.by: column``), else None."""
    from_test: np.ndarray | None = None
    """(rows,) ``1`` on rows read from ``source.test_path``, else None."""

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


@dataclass(frozen=True)
class GridStep:
    """A series grid's step: a fixed duration, or a calendar step read in ``timezone``.

    Positions are step numbers from a series' first timestamp (position 0). On a fixed
    grid they are nanosecond offsets divided by the step; on a calendar grid they are
    differences of calendar ordinals (`Frequency.ordinals`), so a month is one step
    whether it has 28 or 31 days, and every later stage works on the same integers.
    """

    frequency: Frequency
    timezone: str = "UTC"

    @property
    def nanos(self) -> int | None:
        return self.frequency.nanos

    @property
    def seconds(self) -> float:
        """The step in seconds; a calendar step's mean length (a month ~30.4 days)."""
        if self.frequency.nanos is not None:
            return self.frequency.nanos / NS_PER_SECOND
        # 240 steps from the epoch: 20 years of months, 240 years (within ns range) of years
        ordinals = np.asarray([0, 240], np.int64) * self.frequency.multiple
        first, last = self.frequency.stamps(ordinals, 0, "UTC")
        return float(last - first) / NS_PER_SECOND / (ordinals[1] - ordinals[0])

    def to_json(self) -> dict[str, object]:
        return {"frequency": self.frequency.alias, "nanos": self.nanos, "timezone": self.timezone}

    @classmethod
    def from_json(cls, data: dict) -> GridStep:
        return cls(Frequency(data["frequency"], data["nanos"]), data["timezone"])

    def offsets(self, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steps from ``stamps[0]`` (int64, floored) and whether each stamp is on the grid."""
        stamps = np.asarray(stamps, np.int64)
        nanos = self.frequency.nanos
        if nanos is not None:
            offsets = stamps - stamps[0]
            return offsets // nanos, offsets % nanos == 0
        ordinal, time_of_day, on_anchor = self.frequency.ordinals(stamps, self.timezone)
        units = ordinal - ordinal[0]
        n = self.frequency.multiple
        on_grid = on_anchor & (time_of_day == time_of_day[0]) & (units % n == 0)
        return units // n, on_grid

    def stamps_at(self, first_stamp: int, positions: np.ndarray) -> np.ndarray:
        """UTC int64 ns of grid ``positions`` of the series whose grid starts at ``first_stamp``."""
        positions = np.asarray(positions, np.int64)
        nanos = self.frequency.nanos
        if nanos is not None:
            return first_stamp + positions * nanos
        ordinal, time_of_day, _ = self.frequency.ordinals(np.asarray([first_stamp]), self.timezone)
        n = self.frequency.multiple
        return self.frequency.stamps(ordinal[0] + positions * n, int(time_of_day[0]), self.timezone)

    def steps_until(self, first_stamp: int, instant: int) -> int:
        """The position of the first grid step at or after ``instant`` (may be <= 0)."""
        nanos = self.frequency.nanos
        if nanos is not None:
            return -(-(instant - first_stamp) // nanos)
        both = np.asarray([first_stamp, instant], np.int64)
        ordinal, _, _ = self.frequency.ordinals(both, self.timezone)
        guess = int((ordinal[1] - ordinal[0]) // self.frequency.multiple)
        candidates = np.arange(guess - 2, guess + 3)
        after = self.stamps_at(first_stamp, candidates) >= instant
        return int(candidates[np.argmax(after)])


def fixed_step(nanos: int) -> GridStep:
    """A fixed grid of ``nanos`` nanoseconds."""
    return GridStep(fixed(nanos))


def grid_step(frequency: str | None, inferred: Frequency | None, timezone: str = "UTC") -> GridStep:
    """The grid step: the configured frequency, else the inferred one (`StepCounter`)."""
    if frequency is not None:
        return GridStep(parse_frequency(frequency), timezone)
    if inferred is None:
        raise DataContractError(
            "cannot infer the time step: every series has a single row. Set source.frequency."
        )
    return GridStep(inferred, timezone)


def layout_step(layout: WindowLayout) -> GridStep:
    """The grid step a layout was built on (layouts saved before calendar steps: fixed)."""
    if layout.frequency is not None:
        return GridStep(parse_frequency(layout.frequency), layout.timezone)
    return fixed_step(int(round(layout.step_seconds * NS_PER_SECOND)))


def future_stamps(origins: np.ndarray, steps: np.ndarray, layout: WindowLayout) -> np.ndarray:
    """UTC int64 ns of ``steps`` grid steps after each origin: (origins, steps).

    Months, quarters and years advance on the calendar: one month after 2026-01-31 (``ME``)
    is 2026-02-28, two months 2026-03-31.

    Args:
        origins: (n,) UTC int64 ns, each on the layout's grid (a series' last step).
        steps: (k,) int step counts, e.g. ``1..horizon``.
    """
    step = layout_step(layout)
    return steps_after(origins, steps, step.frequency, step.timezone)


def report_time(
    stamps_ns: np.ndarray, layout: WindowLayout, unit: str = "ns"
) -> pd.DatetimeIndex | np.ndarray:
    """Timestamps as the source wrote them: UTC datetimes (in ``unit``), or, for an integer
    time column (``layout.time_unit``), years (int64, local calendar year) or step numbers.
    """
    stamps_ns = np.asarray(stamps_ns, np.int64)
    if layout.time_unit == "year":
        return _local_years(stamps_ns, layout.timezone)
    if layout.time_unit == "step":
        return stamps_ns // NS_PER_SECOND
    return pd.DatetimeIndex(stamps_ns.astype("datetime64[ns]"), tz="UTC").as_unit(unit)


def _local_years(stamps_ns: np.ndarray, timezone: str) -> np.ndarray:
    utc = pd.DatetimeIndex(stamps_ns.astype("datetime64[ns]"), tz="UTC")
    return utc.tz_convert(timezone).year.to_numpy(np.int64)


def _stamp(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def grid_positions(rows: SeriesRows, step: GridStep) -> np.ndarray:
    """Each row's step number on the series' grid; raises on an off-grid or repeated time."""
    position, on_grid = step.offsets(rows.stamps)
    off_grid = np.flatnonzero(~on_grid)
    if off_grid.size:
        first = int(off_grid[0])
        raise DataContractError(
            f"series {rows.series!r}: {off_grid.size} timestamp(s) are off its "
            f"{_describe(step)} grid that starts at {_stamp(int(rows.stamps[0]))}, "
            f"first {_stamp(int(rows.stamps[first]))}. Resample the source to one step, or "
            f"set source.frequency to the step the data has (a pandas alias: '1h', 'MS', "
            f"'ME', 'QS', 'YS', 'W-SUN', 'B', ...)."
        )
    repeated = np.flatnonzero(np.diff(position) <= 0)
    if repeated.size:
        at = int(repeated[0]) + 1
        raise DataContractError(
            f"series {rows.series!r}: timestamps must increase; row {at} "
            f"({_stamp(int(rows.stamps[at]))}) repeats or precedes the one before it."
        )
    return position


def _describe(step: GridStep) -> str:
    if step.nanos is not None:
        return str(pd.Timedelta(step.nanos))
    return f"{step.frequency.alias} (in {step.timezone})"


def segment_ids(stamps: np.ndarray, step: GridStep) -> np.ndarray:
    """A segment number per stamp (sorted, on the grid), incremented after every gap."""
    if len(stamps) == 0:
        return np.zeros(0, np.int64)
    position, _ = step.offsets(np.asarray(stamps, np.int64))
    return np.concatenate([[0], np.cumsum(np.diff(position) > 1)]).astype(np.int64)


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


def to_grid(rows: SeriesRows, step: GridStep, fill_gaps: int, fill_method: str) -> GridRows:
    """Regularise ``rows`` to the grid of ``step``; fill gaps of <= ``fill_gaps`` steps."""
    position = grid_positions(rows, step)
    origin = int(rows.stamps[0]) if len(rows) else 0
    keep = _observed(rows)
    if not keep.all():
        rows = select_rows(rows, keep)
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
            stamps=step.stamps_at(origin, wanted),
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
    return select_rows(rows, rows.stamps < stamp_ns)


def select_rows(rows: SeriesRows, which: np.ndarray | slice) -> SeriesRows:
    """The rows ``which`` (a mask or a slice) picks, every per-row array cut alike."""
    return SeriesRows(
        series=rows.series,
        stamps=rows.stamps[which],
        values=rows.values[which],
        labels=None if rows.labels is None else rows.labels[which],
        future=rows.future[which],
        static=rows.static[which],
        split=None if rows.split is None else rows.split[which],
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
    """Counts the steps between consecutive timestamps over many series, in bounded memory.

    It also keeps the first ``sample_rows`` stamps it sees, so the most common step can be
    read on the calendar (`seqcast.frequency.infer_frequency`: 28-31 days is a month).
    """

    def __init__(self, sample_rows: int = 100_000) -> None:
        self.counts: dict[int, int] = {}
        self.sample: list[np.ndarray] = []
        self._room = sample_rows

    def add(self, stamps: np.ndarray) -> None:
        steps, counts = np.unique(np.diff(stamps), return_counts=True)
        for step, count in zip(steps.tolist(), counts.tolist(), strict=True):
            if step > 0:
                self.counts[step] = self.counts.get(step, 0) + count
        if self._room > 1 and len(stamps) > 1:
            self.sample.append(np.asarray(stamps[: self._room], np.int64).copy())
            self._room -= len(self.sample[-1])

    def most_common_seconds(self) -> float | None:
        """The most common step in seconds (the smallest on a tie), or None if none seen."""
        step = self._most_common()
        return None if step is None else step / NS_PER_SECOND

    def _most_common(self) -> int | None:
        if not self.counts:
            return None
        return min(self.counts, key=lambda s: (-self.counts[s], s))

    def frequency(self, timezone: str = "UTC") -> Frequency | None:
        """The inferred step, calendar-aware; None if no series has two rows."""
        return infer_frequency(self._most_common(), self.sample, timezone)
