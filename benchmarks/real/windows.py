"""seqcast's test windows as (series, origin, step, target) rows, and the naive peers on them.

Every peer is scored on exactly the targets seqcast scored: taken from the version's
``test_forecasts.parquet`` when the registry has one, else rebuilt from the split rule
(`seqcast.windows.windowing.split_bounds`: per series, test starts at
``n - round(n * test)`` rows; a window is a test window when all its targets lie in test).
The benchmark series have no gaps, so a row is a grid step. Origins are row indices of the
last input step; ``step`` is 1..horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqcast.windows.windowing import split_bounds

KEYS = ["series", "origin", "step", "target"]


@dataclass(frozen=True)
class Series:
    """One series' rows in time order.

    Attributes:
        name: the series id.
        times: each row's time as a UTC timestamp (integer years as 1 January).
        values: (rows, columns) values in original units, columns as ``Panel.columns``.
    """

    name: str
    times: pd.DatetimeIndex
    values: np.ndarray


@dataclass(frozen=True)
class Panel:
    """The benchmark table, split into series, with the config's column roles.

    Attributes:
        series: every series, sorted by id.
        columns: value columns, targets first then features (the model's input order).
        n_targets: how many of ``columns`` are targets.
    """

    series: list[Series]
    columns: list[str]
    n_targets: int

    @property
    def targets(self) -> list[str]:
        return self.columns[: self.n_targets]


def time_key(value: object) -> pd.Timestamp:
    """A CSV or Parquet time as a UTC timestamp; an integer year is its 1 January.

    The benchmark's yearly CSVs hold integer years; seqcast may write the origin back as the
    year or as a timestamp, so both sides go through this one key.
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)  # a year read back as a float
    if isinstance(value, int | np.integer):
        return pd.Timestamp(year=int(value), month=1, day=1, tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def make_panel(
    frame: pd.DataFrame, series: str, time: str, targets: list[str], features: list[str]
) -> Panel:
    """Split a long frame into sorted series (columns ``targets + features``)."""
    columns = [*targets, *features]
    out = []
    for name, rows in frame.groupby(series, sort=True):
        rows = rows.sort_values(time, kind="stable")
        times = pd.DatetimeIndex([time_key(v) for v in rows[time].tolist()])
        out.append(Series(str(name), times, rows[columns].to_numpy(dtype=np.float64)))
    return Panel(out, columns, len(targets))


def window_origins(n_rows: int, lookback: int, horizon: int, val: float, test: float) -> list[int]:
    """Origins (last input rows) of the test windows of one series, in order.

    A window ending its input at row ``o`` forecasts rows ``o+1 .. o+horizon``; it is a test
    window when ``o + 1 >= test_start`` and its input ``o-lookback+1 .. o`` starts at row 0 or
    later and the targets end inside the series.
    """
    _, test_start = split_bounds(n_rows, val, test)
    first = max(test_start - 1, lookback - 1)
    return list(range(first, n_rows - horizon))


def target_rows(panel: Panel, origins: dict[str, list[int]], horizon: int) -> pd.DataFrame:
    """Rows (series, origin, step, target, actual) for the given origins of each series."""
    records = []
    for s in panel.series:
        for origin in origins.get(s.name, []):
            for step in range(1, horizon + 1):
                for j, target in enumerate(panel.targets):
                    records.append((s.name, origin, step, target, s.values[origin + step, j]))
    return pd.DataFrame(records, columns=[*KEYS, "actual"])


def reconstructed_windows(
    panel: Panel, lookback: int, horizon: int, val: float, test: float
) -> pd.DataFrame:
    """The test targets rebuilt from the split rule (no test_forecasts.parquet)."""
    origins = {
        s.name: window_origins(len(s.values), lookback, horizon, val, test) for s in panel.series
    }
    return target_rows(panel, origins, horizon)


def rows_from_forecasts(panel: Panel, forecasts: pd.DataFrame) -> pd.DataFrame:
    """seqcast's ``test_forecasts.parquet`` with each origin turned into its row index.

    Keeps seqcast's own ``actual`` and every predictor column; raises naming the series and
    origin when a forecast origin is not a row of the benchmark CSV (a misaligned harness).
    """
    positions = {s.name: {t: i for i, t in enumerate(s.times)} for s in panel.series}
    out = forecasts.copy()
    out["series"] = out["series"].astype(str)
    rows = []
    for name, origin in zip(out["series"], out["origin"], strict=True):
        row = positions.get(name, {}).get(time_key(origin))
        if row is None:
            raise ValueError(
                f"test_forecasts.parquet: origin {origin!r} of series {name!r} is not a row of "
                "the benchmark CSV; the harness and the flow read different data"
            )
        rows.append(row)
    out["origin"] = rows
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def _history(panel: Panel) -> dict[str, np.ndarray]:
    return {s.name: s.values for s in panel.series}


def last_value(panel: Panel, rows: pd.DataFrame) -> np.ndarray:
    """Each row's forecast: the target's value at the origin."""
    history = _history(panel)
    column = {t: j for j, t in enumerate(panel.targets)}
    return np.array(
        [
            history[s][o, column[t]]
            for s, o, t in zip(rows["series"], rows["origin"], rows["target"], strict=True)
        ]
    )


def seasonal_naive(panel: Panel, rows: pd.DataFrame, season: int) -> np.ndarray:
    """Each row's forecast: the value one season before the step (the last season repeated).

    Step ``h`` from origin ``o`` reads row ``o - season + 1 + (h - 1) % season``, as
    seqcast's own baseline does.
    """
    history = _history(panel)
    column = {t: j for j, t in enumerate(panel.targets)}
    return np.array(
        [
            history[s][o - season + 1 + (h - 1) % season, column[t]]
            for s, o, h, t in zip(
                rows["series"], rows["origin"], rows["step"], rows["target"], strict=True
            )
        ]
    )


def mae(rows: pd.DataFrame, predictor: str) -> float:
    """Mean absolute error of one predictor column over all rows (original units)."""
    return float(np.mean(np.abs(rows[predictor].to_numpy() - rows["actual"].to_numpy())))


LEVEL_RTOL = 1e-6
"""Two MAEs this close are level: seqcast reads values as float32, so the same predictor
(last value, say) scored from its test_forecasts.parquet and from the benchmark's CSV differs
in the seventh digit (shampoo: 113.22778 against 113.22777)."""


def at_or_below(mine: float | None, best: float) -> bool:
    """Whether ``mine`` is at or below ``best``, level within float32 rounding."""
    return mine is not None and mine <= best + LEVEL_RTOL * abs(best)
