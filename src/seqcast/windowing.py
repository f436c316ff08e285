"""Window: split each series by time (or whole series), scale, cut (lookback -> horizon) windows.

Alignment, for a series of ``T`` rows and a window starting at row ``s``::

    inputs   rows [s, s + lookback)                           # (lookback, n_inputs)
    forecast rows [s + lookback, s + lookback + horizon)      # (horizon, n_targets)
    classify row   s + lookback - 1 + horizon                 # one label

A window never crosses a series boundary or a gap (a step longer than the series'
usual step), and it belongs to the split that holds all of its target rows, so a
validation or test target is never seen in training. Inputs may reach back into an
earlier split: that is history the model would have at prediction time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from seqcast.config import PipelineConfig
from seqcast.errors import DataContractError
from seqcast.scaling import Scaler, fit_scaler

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WindowLayout:
    """What a model built on these windows reads and predicts; stored with the model."""

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

    @property
    def span(self) -> int:
        """Rows one window covers, inputs and targets together."""
        return self.lookback + self.horizon


@dataclass
class WindowArrays:
    """The windows of one split.

    x: (windows, lookback, n_inputs) scaled inputs.
    y: (windows, horizon, n_targets) scaled targets (forecast) or (windows,) class ids.
    series: (windows,) series id of each window.
    origin: (windows,) timestamp of each window's last input step.
    """

    x: np.ndarray
    y: np.ndarray
    series: np.ndarray
    origin: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def window_starts(n_rows: int, span: int, stride: int) -> np.ndarray:
    """Start rows of every full window in a segment of ``n_rows`` rows."""
    if n_rows < span:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, n_rows - span + 1, stride, dtype=np.int64)


def split_bounds(n_rows: int, val: float, test: float) -> tuple[int, int]:
    """Row indices where val and test start in a series of ``n_rows`` rows."""
    test_start = n_rows - int(round(n_rows * test))
    val_start = test_start - int(round(n_rows * val))
    return val_start, test_start


def assign_series_splits(series_ids: list[str], val: float, test: float) -> dict[str, str]:
    """Whole series to splits, in sorted order: the last ones go to val then test."""
    ordered = sorted(series_ids)
    n = len(ordered)
    n_test = max(1, int(round(n * test)))
    n_val = int(round(n * val))
    if n - n_test - n_val < 1:
        raise DataContractError(
            f"split.by=series needs more series: {n} series cannot fill train, val ({val}) "
            f"and test ({test}). Add series or use split.by=time."
        )
    splits = ["train"] * (n - n_test - n_val) + ["val"] * n_val + ["test"] * n_test
    return dict(zip(ordered, splits, strict=True))


def infer_step_seconds(frame: pd.DataFrame, series_column: str, timestamp: str) -> float:
    """The most common step between consecutive timestamps of a series, in seconds."""
    diffs = frame.groupby(series_column, sort=False)[timestamp].diff().dt.total_seconds().dropna()
    if diffs.empty:
        raise DataContractError("cannot infer the time step: every series has a single row")
    return float(diffs.mode().iloc[0])


def segment_ids(stamps: pd.Series, step_seconds: float) -> np.ndarray:
    """A segment number per row, incremented after every gap longer than one step."""
    gaps = stamps.diff().dt.total_seconds().to_numpy() > step_seconds * 1.5
    return np.cumsum(gaps)


def make_layout(
    config: PipelineConfig, series_column: str, step_seconds: float, classes: list[str]
) -> WindowLayout:
    source = config.source
    inputs = list(source.features) if config.task == "classify" else source.value_columns
    return WindowLayout(
        task=config.task,
        lookback=config.window.lookback,
        horizon=config.window.horizon,
        stride=config.window.stride,
        series_column=series_column,
        timestamp=source.timestamp,
        input_columns=inputs,
        target_columns=list(source.target),
        classes=classes,
        step_seconds=step_seconds,
    )


def _series_windows(
    rows: pd.DataFrame,
    series: str,
    layout: WindowLayout,
    scaler: Scaler,
    split_of_start: np.ndarray | None,
    class_index: dict[str, int],
) -> dict[str, list[WindowArrays]]:
    """Windows of one series, grouped by split."""
    inputs = scaler.transform(rows[layout.input_columns].to_numpy(np.float32), series)
    out: dict[str, list[WindowArrays]] = {s: [] for s in SPLITS}
    segments = segment_ids(rows[layout.timestamp], layout.step_seconds)
    starts = window_starts(len(rows), layout.span, layout.stride)
    # A window is whole only if its first and last row lie in the same gap-free segment.
    starts = starts[segments[starts] == segments[starts + layout.span - 1]]
    if split_of_start is not None:
        labels = split_of_start[starts]
    else:
        labels = np.full(len(starts), "train", dtype=object)
    stamps = rows[layout.timestamp].to_numpy()
    x_all = sliding_window_view(inputs, layout.lookback, axis=0)  # (T-lookback+1, F, lookback)
    if layout.task == "forecast":
        targets = inputs[:, : len(layout.target_columns)]
        y_all = sliding_window_view(targets, layout.horizon, axis=0)  # (.., K, horizon)
    else:
        codes = rows[layout.target_columns[0]].map(class_index).to_numpy()
    for split in SPLITS:
        chosen = starts[labels == split]
        if layout.task == "classify":
            label_rows = chosen + layout.lookback - 1 + layout.horizon
            known = ~pd.isna(codes[label_rows])
            if (~known).any():
                logger.warning(
                    "%s: %d %s window(s) dropped: label not seen in training",
                    series,
                    int((~known).sum()),
                    split,
                )
            chosen, label_rows = chosen[known], label_rows[known]
            y = codes[label_rows].astype(np.int32)
        else:
            y = y_all[chosen + layout.lookback].transpose(0, 2, 1)  # (n, horizon, K)
        if len(chosen) == 0:
            continue
        x = x_all[chosen].transpose(0, 2, 1)  # (n, lookback, F)
        out[split].append(
            WindowArrays(
                x=np.ascontiguousarray(x, np.float32),
                y=np.ascontiguousarray(y),
                series=np.full(len(chosen), series, dtype=object),
                origin=stamps[chosen + layout.lookback - 1],
            )
        )
    return out


def _time_split_labels(n_rows: int, layout: WindowLayout, val: float, test: float) -> np.ndarray:
    """For every possible start row, the split holding all its target rows ('' if none)."""
    val_start, test_start = split_bounds(n_rows, val, test)
    starts = np.arange(n_rows)
    first_target = starts + (
        layout.lookback if layout.task == "forecast" else layout.lookback - 1 + layout.horizon
    )
    last_target = starts + layout.span - 1
    labels = np.full(n_rows, "", dtype=object)
    labels[last_target < val_start] = "train"
    labels[(first_target >= val_start) & (last_target < test_start)] = "val"
    labels[(first_target >= test_start) & (last_target < n_rows)] = "test"
    return labels


def build_windows(
    frame: pd.DataFrame, config: PipelineConfig, series_column: str
) -> tuple[dict[str, WindowArrays], Scaler, WindowLayout]:
    """Split, scale and window a validated, sorted frame.

    Returns:
        The windows per split, the scaler fitted on train rows, and the layout.
    """
    timestamp = config.source.timestamp
    step_seconds = infer_step_seconds(frame, series_column, timestamp)
    groups = {str(k): g for k, g in frame.groupby(series_column, sort=True)}
    split = config.split
    if split.by == "series":
        series_split = assign_series_splits(list(groups), split.val, split.test)
        train_rows = pd.concat([g for s, g in groups.items() if series_split[s] == "train"])
    else:
        train_rows = pd.concat(
            [g.iloc[: split_bounds(len(g), split.val, split.test)[0]] for g in groups.values()]
        )
    classes: list[str] = []
    if config.task == "classify":
        classes = sorted(train_rows[config.source.target[0]].astype(str).unique())
        if len(classes) < 2:
            raise DataContractError(
                f"classify needs at least two classes in the training split of column "
                f"{config.source.target[0]!r}; found {classes}"
            )
    layout = make_layout(config, series_column, step_seconds, classes)
    scaler = fit_scaler(train_rows, series_column, layout.input_columns, config.normalize)
    class_index = {c: i for i, c in enumerate(classes)}
    parts: dict[str, list[WindowArrays]] = {s: [] for s in SPLITS}
    for series, rows in groups.items():
        if split.by == "series":
            labels = np.full(len(rows), series_split[series], dtype=object)
        else:
            labels = _time_split_labels(len(rows), layout, split.val, split.test)
        for name, arrays in _series_windows(
            rows.reset_index(drop=True), series, layout, scaler, labels, class_index
        ).items():
            parts[name].extend(arrays)
    windows = {name: concat_windows(parts[name], layout) for name in SPLITS}
    for name in SPLITS:
        if len(windows[name]) == 0:
            raise DataContractError(
                f"the {name} split has no windows: each series needs more than "
                f"lookback + horizon = {layout.span} rows in its {name} part. Use more data, "
                f"a shorter window, or change split.val / split.test."
            )
    return windows, scaler, layout


def concat_windows(parts: list[WindowArrays], layout: WindowLayout) -> WindowArrays:
    if not parts:
        n_inputs = len(layout.input_columns)
        y_shape = (
            (0, layout.horizon, len(layout.target_columns)) if layout.task == "forecast" else (0,)
        )
        return WindowArrays(
            x=np.empty((0, layout.lookback, n_inputs), np.float32),
            y=np.empty(y_shape, np.float32 if layout.task == "forecast" else np.int32),
            series=np.empty(0, object),
            origin=np.empty(0, "datetime64[ns]"),
        )
    return WindowArrays(
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        series=np.concatenate([p.series for p in parts]),
        origin=np.concatenate([p.origin for p in parts]),
    )
