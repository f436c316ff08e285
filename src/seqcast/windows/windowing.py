"""Window: which (lookback -> horizon) windows a series yields, and cutting them from its rows.

Alignment, for a series on its regular grid and a window starting at row ``s``::

    inputs   rows [s, s + lookback)                           # (lookback, n_inputs)
    forecast rows [s + lookback, s + lookback + horizon)      # (horizon, n_targets)
    future   rows [s + lookback, s + lookback + horizon)      # (horizon, n_future) covariates
    classify row   s + lookback - 1 + horizon                 # one label

A window never crosses a series boundary or a gap (it lies inside one gap-free run of
`seqcast.windows.grid`), and it belongs to the split that holds all of its target rows,
so a validation or test target is never seen in training. Inputs may reach back into an
earlier split: that is history the model would have at prediction time.

Windows are described by their start rows (`SeriesWindows`) and cut from the rows only
when needed (`cut_windows`): the window store keeps rows plus start indices, and the
input pipeline materialises a bounded number of windows at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from seqcast.config import PipelineConfig, SplitSpec
from seqcast.windows.covariates import calendar_columns
from seqcast.windows.grid import GridRows, GridStep, layout_step
from seqcast.windows.grid import segment_ids as grid_segment_ids
from seqcast.windows.sequences import VALID_COLUMN, pool_size

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WindowLayout:
    """What a model built on these windows reads and predicts; stored with the model.

    ``future_columns`` are the known-future covariates given for the forecast steps (the
    configured columns, then the calendar features' sin/cos columns); ``static_columns``
    the per-series features. Their train-set mean and std travel here because the model
    normalises them itself, so a champion scores a challenger's windows unchanged.
    """

    task: str
    lookback: int
    horizon: int
    stride: int
    series_column: str
    timestamp: str
    input_columns: list[str]
    target_columns: list[str]
    classes: list[str]
    step_seconds: float
    future_columns: list[str] = field(default_factory=list)
    static_columns: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)
    timezone: str = "UTC"
    future_mean: list[float] = field(default_factory=list)
    future_std: list[float] = field(default_factory=list)
    static_mean: list[float] = field(default_factory=list)
    static_std: list[float] = field(default_factory=list)
    frequency: str | None = None
    """The grid's pandas alias (``1h``, ``MS``, ``W-SUN``); None in layouts saved before
    calendar steps, whose grid is the fixed ``step_seconds``."""
    time_unit: str | None = None
    """``year`` or ``step`` when the source's time column holds integers: prediction
    reports its timestamps back in that form."""
    per: str = "step"
    """``sequence``: one window per whole series, ``lookback`` its padded length, its last
    input column `seqcast.windows.sequences.VALID_COLUMN` (1 = a real step, 0 = padding)."""
    pool: int = 1
    """``per: sequence``: the network averages each block of ``pool`` consecutive steps into
    one before its recurrence (`seqcast.modeling.networks.StepPool`; ``window.max_steps``);
    the windows themselves hold every step. 1 in layouts saved before pooling."""

    @property
    def span(self) -> int:
        """Rows one window covers, inputs and targets together."""
        return self.lookback + self.horizon

    @property
    def n_future(self) -> int:
        return len(self.future_columns)

    @property
    def n_static(self) -> int:
        return len(self.static_columns)


@dataclass
class WindowArrays:
    """The windows of one split (or one batch).

    x: (windows, lookback, n_inputs) scaled inputs.
    y: (windows, horizon, n_targets) scaled targets (forecast) or (windows,) class ids.
    series: (windows,) series id of each window.
    origin: (windows,) datetime64[ns] (UTC) of each window's last input step.
    future: (windows, horizon, n_future) known-future covariates at the forecast steps.
    static: (windows, n_static) static features of each window's series.
    """

    x: np.ndarray
    y: np.ndarray
    series: np.ndarray
    origin: np.ndarray
    future: np.ndarray | None = None
    static: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def model_inputs(self, x: np.ndarray | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """What ``model.predict``/``fit`` takes: ``x`` alone, or a dict when covariates exist.

        Args:
            x: inputs to use instead of ``self.x`` (e.g. rescaled for another scaler).
        """
        x = self.x if x is None else x
        return model_inputs(x, self.future, self.static)


def model_inputs(
    x: np.ndarray, future: np.ndarray | None, static: np.ndarray | None
) -> np.ndarray | dict[str, np.ndarray]:
    """The model's input structure: names match `seqcast.modeling.networks.build_model`'s inputs."""
    has_future = future is not None and future.shape[-1] > 0
    has_static = static is not None and static.shape[-1] > 0
    if not (has_future or has_static):
        return x
    inputs: dict[str, Any] = {"window": x}
    if has_future:
        inputs["future"] = future
    if has_static:
        inputs["static"] = static
    return inputs


def split_bounds(n_rows: int, val: float, test: float) -> tuple[int, int]:
    """Row indices where val and test start in a series of ``n_rows`` rows.

    The common convention: test starts at ``floor((1 - test) * n_rows)`` and val at
    ``floor((1 - test - val) * n_rows)``, so the test windows equal those of a script that
    splits with ``int(0.8 * n)``.
    """
    test_start = int(np.floor((1 - test) * n_rows))
    val_start = int(np.floor((1 - test - val) * n_rows))
    return max(val_start, 0), test_start


def grid_split_bounds(
    n_steps: int, first_stamp_ns: int, step: GridStep, split: SplitSpec
) -> tuple[int, int]:
    """Grid steps where val and test start in one series (grid step 0 at ``first_stamp_ns``).

    By fractions of the series (`split_bounds`), or, with ``split.test_from``, test from
    the first step at or after that instant and val the ``val`` fraction before it, so
    every series' test part covers the same period (a backtest fold).
    """
    if split.test_from is None:
        return split_bounds(n_steps, split.val, split.test)
    instant = pd.Timestamp(split.test_from).as_unit("ns").value
    test_start = int(np.clip(step.steps_until(first_stamp_ns, instant), 0, n_steps))
    return test_start - int(round(test_start * split.val)), test_start


def segment_ids(stamps: pd.Series, layout: WindowLayout) -> np.ndarray:
    """A segment number per row, incremented after every gap (a missing grid step)."""
    utc = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True)).as_unit("ns").asi8
    return grid_segment_ids(utc, layout_step(layout))


def time_split_of_steps(n_steps: int, layout: WindowLayout, bounds: tuple[int, int]) -> np.ndarray:
    """For a window starting at each grid step, the split holding all its targets ('' if none).

    ``bounds``: the steps where val and test start (`grid_split_bounds`).
    Returns an (n_steps,) array of split indices into `SPLITS`, -1 where none.
    """
    val_start, test_start = bounds
    starts = np.arange(n_steps)
    first_target = starts + (
        layout.lookback if layout.task == "forecast" else layout.lookback - 1 + layout.horizon
    )
    last_target = starts + layout.span - 1
    labels = np.full(n_steps, -1, dtype=np.int8)
    labels[last_target < val_start] = 0
    labels[(first_target >= val_start) & (last_target < test_start)] = 1
    labels[(first_target >= test_start) & (last_target < n_steps)] = 2
    return labels


@dataclass
class SeriesWindows:
    """Rows of one or more whole series on their grids, and the windows they yield.

    stamps: (rows,) int64 ns UTC. inputs: (rows, n_inputs) float32, scaled.
    future: (rows, n_future) float32 known-future covariates (not scaled; the model does).
    labels: (rows,) int32 class ids, -1 if unknown (classify); (0,) for forecast.
    series: (rows,) int32 index into ``names``. static: (len(names), n_static) float32.
    starts: split -> (windows,) int64 rows where that split's windows start.
    """

    stamps: np.ndarray
    inputs: np.ndarray
    future: np.ndarray
    labels: np.ndarray
    series: np.ndarray
    names: list[str]
    static: np.ndarray
    starts: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.stamps)

    def count(self, split: str) -> int:
        return len(self.starts[split])


def valid_starts(grid: GridRows, layout: WindowLayout) -> np.ndarray:
    """Rows where a window may start: its ``span`` rows lie in one gap-free run, on stride."""
    n = len(grid.position)
    if n < layout.span:
        return np.empty(0, np.int64)
    starts = np.arange(n - layout.span + 1, dtype=np.int64)
    ends = starts + layout.span - 1
    # Inside one run the grid steps are consecutive, so same run <=> end step - start step.
    whole = grid.position[ends] - grid.position[starts] == layout.span - 1
    on_stride = (grid.position[starts] - grid.position[0]) % layout.stride == 0
    return starts[whole & on_stride]


def series_windows(
    grid: GridRows,
    layout: WindowLayout,
    inputs: np.ndarray,
    future: np.ndarray,
    labels: np.ndarray,
    static: np.ndarray,
    split_of_step: np.ndarray | str,
) -> SeriesWindows:
    """The windows of one series, with the split of each.

    Args:
        grid: the series on its grid.
        inputs: (rows, n_inputs) scaled inputs; future: (rows, n_future) covariates.
        labels: (rows,) class ids (-1 unknown) for classify, else (0,).
        static: (n_static,) static features of the series.
        split_of_step: the split of a window by its start step (`time_split_of_steps`),
            or one split name for the whole series (split by series).
    """
    starts = valid_starts(grid, layout)
    if isinstance(split_of_step, str):
        which = np.full(len(starts), SPLITS.index(split_of_step), np.int8)
    else:
        which = split_of_step[grid.position[starts]]
    if layout.task == "classify" and len(starts):
        label_rows = starts + layout.lookback - 1 + layout.horizon
        unknown = labels[label_rows] < 0
        if unknown.any():
            logger.warning(
                "%s: %d window(s) dropped: label not seen in training",
                grid.rows.series,
                int(unknown.sum()),
            )
            starts, which = starts[~unknown], which[~unknown]
    return SeriesWindows(
        stamps=grid.rows.stamps,
        inputs=inputs,
        future=future,
        labels=labels,
        series=np.zeros(len(grid.position), np.int32),
        names=[grid.rows.series],
        static=static.reshape(1, -1).astype(np.float32),
        starts={name: starts[which == i] for i, name in enumerate(SPLITS)},
    )


def concat_series_windows(parts: list[SeriesWindows], layout: WindowLayout) -> SeriesWindows:
    """One block of several series' rows; start rows and series codes are offset to match."""
    if not parts:
        return SeriesWindows(
            stamps=np.empty(0, np.int64),
            inputs=np.empty((0, len(layout.input_columns)), np.float32),
            future=np.empty((0, layout.n_future), np.float32),
            labels=np.empty(0, np.int32),
            series=np.empty(0, np.int32),
            names=[],
            static=np.empty((0, layout.n_static), np.float32),
            starts={s: np.empty(0, np.int64) for s in SPLITS},
        )
    row_offsets = np.cumsum([0, *(len(p) for p in parts[:-1])])
    name_offsets = np.cumsum([0, *(len(p.names) for p in parts[:-1])])
    return SeriesWindows(
        stamps=np.concatenate([p.stamps for p in parts]),
        inputs=np.concatenate([p.inputs for p in parts]),
        future=np.concatenate([p.future for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        series=np.concatenate([p.series + o for p, o in zip(parts, name_offsets, strict=True)]),
        names=[n for p in parts for n in p.names],
        static=np.concatenate([p.static for p in parts]),
        starts={
            s: np.concatenate([p.starts[s] + o for p, o in zip(parts, row_offsets, strict=True)])
            for s in SPLITS
        },
    )


def cut_model_windows(
    rows: SeriesWindows, starts: np.ndarray, layout: WindowLayout
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """What a model trains on for the windows starting at ``starts``: (x, y, future, static).

    x: (n, lookback, n_inputs); y: (n, horizon, n_targets) or (n,) class ids;
    future: (n, horizon, n_future) or None; static: (n, n_static) or None.
    """
    starts = np.asarray(starts, np.int64)
    x = np.take(rows.inputs, starts[:, None] + np.arange(layout.lookback), axis=0)
    ahead = starts[:, None] + layout.lookback + np.arange(layout.horizon)  # (n, horizon)
    if layout.task == "forecast":
        n_targets = len(layout.target_columns)
        y = np.take(rows.inputs[:, :n_targets], ahead, axis=0)  # targets lead the inputs
    else:
        y = rows.labels[starts + layout.lookback - 1 + layout.horizon].astype(np.int32)
    future = np.take(rows.future, ahead, axis=0) if layout.n_future else None
    static = rows.static[rows.series[starts]] if layout.n_static else None
    return x, y, future, static


def cut_windows(rows: SeriesWindows, starts: np.ndarray, layout: WindowLayout) -> WindowArrays:
    """Materialise the windows starting at ``starts`` (rows of ``rows``), with their ids."""
    starts = np.asarray(starts, np.int64)
    x, y, future, static = cut_model_windows(rows, starts, layout)
    names = np.asarray(rows.names, dtype=object)
    origin = rows.stamps[starts + layout.lookback - 1]
    return WindowArrays(
        x=x,
        y=y,
        series=names[rows.series[starts]] if len(starts) else np.empty(0, object),
        origin=origin.astype("datetime64[ns]"),  # UTC
        future=future,
        static=static,
    )


def concat_windows(parts: list[WindowArrays]) -> WindowArrays:
    """Windows of several batches as one; ``parts`` must not be empty."""

    def join(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    return WindowArrays(
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        series=np.concatenate([p.series for p in parts]),
        origin=np.concatenate([p.origin for p in parts]),
        future=join("future"),
        static=join("static"),
    )


def make_layout(
    config: PipelineConfig,
    series_column: str,
    step: GridStep,
    classes: list[str],
    time_unit: str | None = None,
    future_stats: tuple[list[float], list[float]] = ([], []),
    static_stats: tuple[list[float], list[float]] = ([], []),
    length: int | None = None,
) -> WindowLayout:
    """The layout of ``config``'s windows, with the statistics the build measured
    (``length``: the padded length of whole-sequence windows)."""
    source = config.source
    inputs = list(source.features) if config.task == "classify" else source.value_columns
    per_sequence = config.per_sequence and length is not None
    if per_sequence:
        inputs = [*inputs, VALID_COLUMN]
    calendar: list[str] = list(config.window.calendar)
    n_calendar = 2 * len(calendar)
    return WindowLayout(
        task=config.task,
        lookback=length if per_sequence and length else config.window.lookback,
        horizon=0 if per_sequence else config.window.horizon,
        stride=1 if per_sequence else config.window.stride,
        series_column=series_column,
        timestamp=source.timestamp,
        input_columns=inputs,
        target_columns=list(source.target),
        classes=classes,
        step_seconds=step.seconds,
        future_columns=[*source.future_features, *calendar_columns(calendar)],
        static_columns=list(source.static_features),
        calendar=calendar,
        timezone=source.timezone,
        # Calendar sin/cos pairs already have mean ~0 and std ~1/sqrt(2): left as they are.
        future_mean=[*future_stats[0], *[0.0] * n_calendar],
        future_std=[*future_stats[1], *[1.0] * n_calendar],
        static_mean=list(static_stats[0]),
        static_std=list(static_stats[1]),
        frequency=step.frequency.alias,
        time_unit=time_unit,
        per="sequence" if per_sequence else "step",
        pool=pool_size(length, config.window.max_steps) if per_sequence and length else 1,
    )
