"""Build windows from a series source in three streaming passes of bounded memory.

1. survey: series ids and, unless ``source.frequency`` is set, the most common step
   (reads two columns);
2. fit: each series on its grid, split by time (or whole series), statistics of the
   train rows only: the scaler, the classes, the covariates' mean and std;
3. windows: each series scaled, with its calendar covariates and its window start rows
   per split (`SeriesWindows`), handed to a consumer as soon as it is ready.

Each pass holds one series at a time plus per-series statistics (a few numbers per
series), so peak memory does not grow with the number of series. Passes 2 and 3 can run
on shards of series (row ranges of the source) in parallel: pass 2 keeps each series'
moments (`SeriesFit`) and `merge_fits` merges them in source order, so the statistics
do not depend on the sharding. `build_windows` materialises every window in memory
(tests, small data); `write_part` streams one shard's windows into the window store in
blocks, and `seqcast.windows.step` runs the passes shard by shard.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seqcast.config import PipelineConfig
from seqcast.errors import DataContractError
from seqcast.windows.covariates import calendar_features
from seqcast.windows.grid import (
    GridRows,
    GridStep,
    SeriesRows,
    StepCounter,
    grid_step,
    rows_before,
    to_grid,
)
from seqcast.windows.scaling import Moments, RunningStats, Scaler, Stats, moments
from seqcast.windows.sequences import (
    assign_splits,
    log_pooling,
    padded_inputs,
    sequence_label,
    split_value,
    truncated,
    warn_truncated,
)
from seqcast.windows.series_source import ColumnRoles, FrameSeries, column_roles
from seqcast.windows.store import BlockWriter
from seqcast.windows.windowing import (
    SPLITS,
    SeriesWindows,
    WindowArrays,
    WindowLayout,
    concat_series_windows,
    concat_windows,
    cut_windows,
    grid_split_bounds,
    make_layout,
    series_windows,
    time_split_of_steps,
)

logger = logging.getLogger(__name__)

SeriesSource = Callable[..., Iterator[SeriesRows]]
"""Called as ``source(light=False)``, yields each series once, in any order; re-iterable."""


@dataclass(frozen=True)
class WindowPlan:
    """What the survey and fit passes learned: everything pass 3 needs."""

    layout: WindowLayout
    scaler: Scaler
    step: GridStep
    series_split: dict[str, str] | None
    class_index: dict[str, int]


def _grid(rows: SeriesRows, step: GridStep, config: PipelineConfig) -> GridRows:
    window = config.window
    if config.split.until is not None:
        rows = rows_before(rows, pd.Timestamp(config.split.until).as_unit("ns").value)
    return to_grid(rows, step, window.fill_gaps, window.fill_method)


def _bounds(grid: GridRows, step: GridStep, config: PipelineConfig) -> tuple[int, int]:
    """Grid steps where this series' val and test parts start (time split)."""
    if len(grid.position) == 0:
        return 0, 0
    origin = int(step.stamps_at(int(grid.rows.stamps[0]), -grid.position[:1])[0])
    return grid_split_bounds(grid.n_steps, origin, step, config.split)


def _train_rows(
    grid: GridRows, step: GridStep, config: PipelineConfig, series_split: dict | None
) -> np.ndarray:
    """Mask of the observed (not filled) rows of the training split."""
    if series_split is not None:
        in_train = np.full(len(grid.position), series_split[grid.rows.series] == "train")
    else:
        val_start, _ = _bounds(grid, step, config)
        in_train = grid.position < val_start
    return in_train & ~grid.filled


def _check_static(grid: GridRows, roles: ColumnRoles) -> np.ndarray:
    """The series' static features, (n_static,); raises if one varies within the series."""
    static = grid.rows.static
    if static.shape[1] == 0 or len(static) == 0:
        return np.zeros(static.shape[1], np.float64)
    varies = np.flatnonzero(np.ptp(static, axis=0) > 0)
    if varies.size:
        column = roles.static[int(varies[0])]
        raise DataContractError(
            f"series {grid.rows.series!r}: static feature {column!r} takes more than one "
            f"value; a static feature must be constant within each series (move it to "
            f"source.features if it changes over time)."
        )
    return static[0]


@dataclass(frozen=True)
class Survey:
    """Pass 1 over a source: its series in order, their row counts, step and split."""

    series: list[str]
    rows: list[int]
    step: GridStep
    series_split: dict[str, str] | None
    time_unit: str | None = None
    length: int | None = None
    """window.per=sequence: the steps every sequence is padded or truncated to."""


@dataclass(frozen=True)
class SeriesFit:
    """What pass 2 learned from one series' training rows (moments are None when empty)."""

    series: str
    inputs: Moments | None
    future: Moments | None
    static: Moments | None
    labels: list[str]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeriesFit:
        def part(key: str) -> Moments | None:
            return Moments(**data[key]) if data[key] is not None else None

        return cls(data["series"], part("inputs"), part("future"), part("static"), data["labels"])


def _stratum(rows: SeriesRows, config: PipelineConfig) -> object | None:
    """What a split of whole series is stratified by: the class of a sequence, or the most
    common label of a per-step classify series; None for forecasting."""
    if config.task != "classify" or rows.labels is None:
        return None
    if config.per_sequence:
        return sequence_label(rows)
    common = pd.Series(rows.labels).dropna().mode()
    return common.iloc[0] if len(common) else None


def survey(source: SeriesSource, config: PipelineConfig) -> Survey:
    """Pass 1: the series ids in source order, rows per series, grid step and series split
    (a seeded random draw stratified by class, or the split column's)."""
    steps = StepCounter()
    series_ids: list[str] = []
    counts: list[int] = []
    strata: dict[str, object | None] = {}
    fixed: dict[str, str] = {}
    split = config.split
    for rows in source(light=True):
        series_ids.append(rows.series)
        counts.append(len(rows.stamps))
        if config.source.frequency is None:
            steps.add(rows.stamps)
        if split.by != "time":
            strata[rows.series] = _stratum(rows, config)
        if rows.from_test is not None and len(rows) and str(rows.from_test[0]) == "1":
            fixed[rows.series] = "test"  # from source.test_path
        elif split.column is not None and rows.split is not None:
            fixed[rows.series] = split_value(rows, split.column)
        elif rows.from_test is not None:
            fixed[rows.series] = "train"
    if not series_ids:
        raise DataContractError("the validated table has no rows to cut windows from")
    step = grid_step(
        config.source.frequency, steps.frequency(config.source.timezone), config.source.timezone
    )
    series_split = None
    if split.by != "time":
        series_split = assign_splits(
            series_ids,
            split.val,
            split.test,
            split.seed,
            strata if config.task == "classify" else None,
            fixed if split.by == "column" or config.source.test_path else None,
        )
    time_unit = config.source.time_unit or getattr(source, "time_unit", None)
    length = None
    if config.per_sequence:
        assert series_split is not None  # the config refuses split.by=time
        length = config.window.max_length or max(
            n for s, n in zip(series_ids, counts, strict=True) if series_split[s] == "train"
        )
        warn_truncated(counts, length, config.window.max_length is not None)
        log_pooling(length, config.window.max_steps)
    return Survey(series_ids, counts, step, series_split, time_unit, length)


MAX_MAGNITUDE = float(np.finfo(np.float32).max)
"""The largest value a window, a scaler or a forecast can hold: windows and forecasts are
float32, and a larger finite value (1e308) overflows their statistics to Infinity/NaN."""


def check_magnitudes(rows: SeriesRows, roles: ColumnRoles) -> None:
    """Refuse a series whose input, future or static values exceed `MAX_MAGNITUDE`.

    Raises:
        DataContractError: naming the column, the series and its first rows over the limit
            (timestamp and value), and the fix: a ``max``/``min`` in the contract makes
            validation quarantine such rows with their file and line.
    """
    groups = ((roles.inputs, rows.values), (roles.future, rows.future), (roles.static, rows.static))
    for columns, values in groups:
        if values.size == 0:
            continue
        with np.errstate(invalid="ignore"):
            huge = np.abs(values) > MAX_MAGNITUDE
        if not huge.any():
            continue
        column = int(np.flatnonzero(huge.any(axis=0))[0])
        bad = np.flatnonzero(huge[:, column])
        stamps = pd.DatetimeIndex(rows.stamps[bad[:3]].astype("datetime64[ns]"), tz="UTC")
        examples = ", ".join(
            f"{t.isoformat()} {columns[column]}={values[i, column]:.6g}"
            for t, i in zip(stamps, bad[:3], strict=True)
        )
        raise DataContractError(
            f"column {columns[column]!r} of series {rows.series!r} has {len(bad)} row(s) with "
            f"|value| above {MAX_MAGNITUDE:.4g}, more than seqcast's float32 windows and "
            f"scaling can hold (its statistics would be Infinity/NaN): {examples}. Fix those "
            f"rows in the source, or give the column a `max`/`min` in the contract so "
            "validation quarantines them with their file and line."
        )


def check_statistics(scaler: Scaler) -> None:
    """Refuse a scaler whose mean or std is not finite (the last guard before publishing).

    Raises:
        DataContractError: naming the column and the series whose statistics overflowed.
    """
    named = {"all series": scaler.global_stats, **scaler.series_stats}
    for series, stats in named.items():
        finite = np.isfinite(stats.mean) & np.isfinite(stats.std)
        if not finite.all():
            column = scaler.columns[int(np.flatnonzero(~finite)[0])]
            raise DataContractError(
                f"the training statistics of column {column!r} ({series}) are not finite "
                f"(mean {stats.mean}, std {stats.std}): its values are too large to scale. "
                "Fix those rows in the source, or give the column a `max`/`min` in the "
                "contract so validation quarantines them with their file and line."
            )


def fit_series(
    source: SeriesSource,
    config: PipelineConfig,
    series_column: str,
    step: GridStep,
    series_split: dict[str, str] | None,
    length: int | None = None,
) -> Iterator[SeriesFit]:
    """Pass 2 over (a shard of) the source: each series' train-row moments, in order
    (window.per=sequence: each train sequence's, truncated to ``length``).

    Raises:
        DataContractError: a value too large to scale (`check_magnitudes`), here, before
            any window is written, rather than as NaN in a published scaler.
    """
    roles = column_roles(config, series_column)
    for rows in source():
        check_magnitudes(rows, roles)
        if config.per_sequence:
            fit = _fit_sequence(rows, roles, series_split or {}, length or len(rows))
            if fit is not None:
                yield fit
            continue
        grid = _grid(rows, step, config)
        train = _train_rows(grid, step, config, series_split)
        static_values = _check_static(grid, roles)
        if not train.any():
            continue
        labels = []
        if grid.rows.labels is not None:
            labels = sorted(str(v) for v in pd.unique(grid.rows.labels[train]))
        yield SeriesFit(
            series=grid.rows.series,
            inputs=moments(grid.rows.values[train]),
            future=moments(grid.rows.future[train]),
            static=moments(static_values[None, :]),
            labels=labels,
        )


def _fit_sequence(
    rows: SeriesRows, roles: ColumnRoles, series_split: dict[str, str], length: int
) -> SeriesFit | None:
    """A train sequence's moments (its own rows: padding is added later and never counted)
    and its label; None for a val or test sequence."""
    label = sequence_label(rows)
    if series_split.get(rows.series) != "train":
        return None
    if label is None:
        raise DataContractError(
            f"training sequence {rows.series!r} has no label: column {roles.label!r} is "
            "empty on all its rows. Give it a label, or remove the sequence."
        )
    rows = truncated(rows, length)
    static = rows.static[0] if len(rows) else np.zeros(rows.static.shape[1])
    return SeriesFit(
        series=rows.series,
        inputs=moments(rows.values),
        future=None,
        static=moments(static[None, :]),
        labels=[str(label)],
    )


def merge_fits(
    fits: Iterable[SeriesFit], config: PipelineConfig, series_column: str, found: Survey
) -> WindowPlan:
    """The plan from every series' fit, merged in source order.

    Merging the same per-series moments in the same order gives bit-identical statistics
    however the series were sharded, so every runner builds the same windows.
    """
    roles = column_roles(config, series_column)
    kind = config.normalize
    overall = RunningStats(len(roles.inputs))
    future = RunningStats(len(roles.future))
    static = RunningStats(len(roles.static))
    per_series: dict[str, Stats] = {}
    labels: set[str] = set()
    for fit in fits:
        for stats, part in ((overall, fit.inputs), (future, fit.future), (static, fit.static)):
            if part is not None:
                stats.merge(part)
        if kind == "series" and fit.inputs is not None:
            per_series[fit.series] = fit.inputs.stats()
        labels.update(fit.labels)
    classes: list[str] = []
    if config.task == "classify":
        classes = sorted(labels)
        if len(classes) < 2:
            raise DataContractError(
                f"classify needs at least two classes in the training split of column "
                f"{roles.label!r}; found {classes}"
            )
    future_stats, static_stats = future.stats(), static.stats()
    layout = make_layout(
        config,
        series_column,
        found.step,
        classes,
        found.time_unit,
        (future_stats.mean, future_stats.std),
        (static_stats.mean, static_stats.std),
        found.length,
    )
    scaler = Scaler(
        kind=kind if roles.inputs else "none",
        columns=list(roles.inputs),
        global_stats=overall.stats(),
        series_stats=per_series,
    )
    check_statistics(scaler)
    class_index = {c: i for i, c in enumerate(classes)}
    return WindowPlan(layout, scaler, found.step, found.series_split, class_index)


def plan_windows(source: SeriesSource, config: PipelineConfig, series_column: str) -> WindowPlan:
    """Passes 1 and 2 over the whole source: the grid step, the splits, the statistics."""
    found = survey(source, config)
    fits = fit_series(source, config, series_column, found.step, found.series_split, found.length)
    return merge_fits(fits, config, series_column, found)


def iter_series_windows(
    source: SeriesSource, plan: WindowPlan, config: PipelineConfig
) -> Iterator[SeriesWindows]:
    """Pass 3: each series' scaled rows and window starts; series without windows skipped."""
    layout = plan.layout
    calendar = list(config.window.calendar)
    for rows in source():
        if layout.per == "sequence":
            windows = sequence_window(rows, plan)
            if windows is not None:
                yield windows
            continue
        grid = _grid(rows, plan.step, config)
        if grid.n_steps < layout.span:
            continue
        regular = grid.rows
        inputs = plan.scaler.transform(regular.values.astype(np.float32), regular.series)
        future = np.concatenate(
            [
                regular.future.astype(np.float32),
                calendar_features(regular.stamps, calendar, layout.timezone),
            ],
            axis=1,
        )
        if regular.labels is not None:
            codes = pd.Series(regular.labels).map(plan.class_index)
            labels = codes.fillna(-1).to_numpy(np.int32)
        else:
            labels = np.empty(0, np.int32)
        if plan.series_split is not None:
            split_of_step: np.ndarray | str = plan.series_split[regular.series]
        else:
            split_of_step = time_split_of_steps(
                grid.n_steps, layout, _bounds(grid, plan.step, config)
            )
        static = regular.static[0] if len(regular) else np.zeros(layout.n_static)
        windows = series_windows(grid, layout, inputs, future, labels, static, split_of_step)
        if any(windows.count(s) for s in SPLITS):
            yield windows


def sequence_window(rows: SeriesRows, plan: WindowPlan) -> SeriesWindows | None:
    """One sequence as one window: its last ``lookback`` rows, scaled, padded on the right
    (`seqcast.windows.sequences.padded_inputs`), labelled on every row with its class.

    None (with a warning) for a sequence without a label or with one not seen in training.
    """
    layout = plan.layout
    assert plan.series_split is not None  # sequences are split whole
    label = sequence_label(rows)
    code = plan.class_index.get(str(label)) if label is not None else None
    if code is None:
        logger.warning(
            "sequence %r skipped: %s",
            rows.series,
            "no label" if label is None else f"label {label!r} not seen in training",
        )
        return None
    rows = truncated(rows, layout.lookback)
    scaled = plan.scaler.transform(rows.values.astype(np.float32), rows.series)
    inputs = padded_inputs(scaled, layout.lookback)  # (lookback, n_features + 1)
    stamps = np.full(layout.lookback, rows.stamps[-1], np.int64)  # padding: the last step's
    stamps[: len(rows)] = rows.stamps
    static = rows.static[0] if len(rows) else np.zeros(layout.n_static)
    split = SPLITS.index(plan.series_split[rows.series])
    return SeriesWindows(
        stamps=stamps,
        inputs=inputs,
        future=np.zeros((layout.lookback, 0), np.float32),
        labels=np.full(layout.lookback, code, np.int32),
        series=np.zeros(layout.lookback, np.int32),
        names=[rows.series],
        static=static.reshape(1, -1).astype(np.float32),
        starts={name: np.zeros(int(i == split), np.int64) for i, name in enumerate(SPLITS)},
    )


def build_windows(
    frame: pd.DataFrame, config: PipelineConfig, series_column: str
) -> tuple[dict[str, WindowArrays], Scaler, WindowLayout]:
    """Split, scale and window a validated frame, with every window in memory.

    Returns:
        The windows per split, the scaler fitted on train rows, and the layout.
    """
    source = FrameSeries(frame, column_roles(config, series_column))
    plan = plan_windows(source, config, series_column)
    parts = list(iter_series_windows(source, plan, config))
    counts = {s: sum(p.count(s) for p in parts) for s in SPLITS}
    require_every_split(counts, plan.layout)
    windows = {
        s: concat_windows([cut_windows(p, p.starts[s], plan.layout) for p in parts]) for s in SPLITS
    }
    return windows, plan.scaler, plan.layout


def write_part(
    source: SeriesSource,
    plan: WindowPlan,
    config: PipelineConfig,
    uri: str,
    part: int = 0,
    block_rows: int = 65_536,
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Pass 3 over (a shard of) the source: its windows into part ``part`` of store ``uri``.

    Series are grouped into blocks of about ``block_rows`` rows (a block holds whole
    series, so no window crosses blocks); each block is written as it fills.

    Returns:
        Windows per split, and a summary of each block (part, row group, rows, series,
        windows per split).
    """
    with BlockWriter(uri, plan.layout, part) as writer:
        block: list[SeriesWindows] = []
        rows = 0
        for windows in iter_series_windows(source, plan, config):
            block.append(windows)
            rows += len(windows)
            if rows >= block_rows:
                writer.write(concat_series_windows(block, plan.layout))
                block, rows = [], 0
        if block:
            writer.write(concat_series_windows(block, plan.layout))
    return dict(writer.counts), writer.blocks


def require_every_split(counts: dict[str, int], layout: WindowLayout) -> None:
    """Raise unless every split has at least one window."""
    for name in SPLITS:
        if counts[name] == 0 and layout.per == "sequence":
            raise DataContractError(
                f"the {name} split has no labelled sequences: check split.column / "
                "split.val / split.test and that its sequences carry a training class."
            )
        if counts[name] == 0:
            raise DataContractError(
                f"the {name} split has no windows: each series needs more than "
                f"lookback + horizon = {layout.span} rows in its {name} part. Use more data, "
                f"a shorter window, or change split.val / split.test."
            )
