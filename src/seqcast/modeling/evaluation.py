"""Evaluate: test metrics of a model, of naive baselines and of the current champion.

Forecast metrics are in original units (each window's series statistics undone), so
they are comparable across models fitted with different scalers. Lower is better for
MAE/RMSE; higher is better for accuracy and macro-F1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowArrays, WindowLayout

PRIMARY_METRIC = {"forecast": "mae", "classify": "macro_f1"}
HIGHER_IS_BETTER = {
    "mae": False,
    "rmse": False,
    "smape": False,
    "mase": False,
    "accuracy": True,
    "balanced_accuracy": True,
    "macro_f1": True,
}
WORST_SERIES_SHOWN = 5
MASE_ZERO_TOLERANCE = 1e-6
"""A naive MAE at or below this fraction of the series' level (float32 rounding of a
constant series) counts as zero: MASE is undefined (NaN) for that series."""


@dataclass(frozen=True)
class Scored:
    """Metrics of one predictor on the test windows."""

    name: str
    metrics: dict[str, float]


def _series_stats(scaler: Scaler, series: np.ndarray, columns: list[str]) -> tuple[np.ndarray, ...]:
    """(mean, std) of ``columns`` per window, each shaped (windows, 1, len(columns))."""
    idx = [scaler.columns.index(c) for c in columns]
    cache = {s: scaler.stats_for(s) for s in np.unique(series)}
    mean = np.stack([cache[s][0][idx] for s in series])[:, None, :]
    std = np.stack([cache[s][1][idx] for s in series])[:, None, :]
    return mean, std


def to_original_units(
    values: np.ndarray, series: np.ndarray, scaler: Scaler, columns: list[str]
) -> np.ndarray:
    """Undo scaling of ``values`` (windows, steps, len(columns))."""
    mean, std = _series_stats(scaler, series, columns)
    return values * std + mean


def rescale_inputs(
    windows: WindowArrays, columns: list[str], source: Scaler, target: Scaler
) -> np.ndarray:
    """Inputs scaled by ``source`` re-expressed in ``target``'s scale (for the champion)."""
    original = to_original_units(windows.x, windows.series, source, columns)
    mean, std = _series_stats(target, windows.series, columns)
    return ((original - mean) / std).astype(np.float32)


def rescale_forecasts(
    values: np.ndarray, series: np.ndarray, columns: list[str], source: Scaler, target: Scaler
) -> np.ndarray:
    """Forecasts (windows, horizon, len(columns)) scaled by ``source`` in ``target``'s scale."""
    original = to_original_units(values, series, source, columns)
    mean, std = _series_stats(target, series, columns)
    return ((original - mean) / std).astype(np.float32)


@dataclass
class ForecastSums:
    """Running sums of `forecast_metrics`' terms for one predictor, so that scores over many
    blocks of windows (evaluation streams the test split, issue 18) equal those over one
    array of them, up to float rounding.

    ``add`` takes arrays of (windows, horizon, n_targets) in original units.
    """

    horizon: int
    abs_error: float = 0.0
    squared_error: float = 0.0
    smape_ratio: float = 0.0
    values: int = 0
    scaled_error: float = 0.0
    scaled_values: int = 0
    with_mase: bool = False
    step_abs_error: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.step_abs_error = np.zeros(self.horizon)

    def add(
        self, predicted: np.ndarray, actual: np.ndarray, mase_scale: np.ndarray | None = None
    ) -> ForecastSums:
        """Add the errors of these windows (``mase_scale``: (windows, 1, n_targets))."""
        # float64 sums: the arrays are often float32, and the sums span the whole split
        error = predicted.astype(np.float64) - actual
        absolute = np.abs(error)
        denominator = np.abs(actual) + np.abs(predicted)
        ratios = np.divide(
            2 * absolute, denominator, out=np.zeros_like(error), where=denominator > 0
        )
        self.abs_error += float(absolute.sum())
        self.squared_error += float((error**2).sum())
        self.smape_ratio += float(ratios.sum())
        self.values += error.size
        self.step_abs_error += absolute.sum(axis=(0, 2))
        if mase_scale is not None:
            self.with_mase = True
            defined = np.broadcast_to(np.isfinite(mase_scale), error.shape)
            scaled = absolute / np.where(np.isfinite(mase_scale), mase_scale, 1.0)
            self.scaled_error += float(scaled[defined].sum())
            self.scaled_values += int(defined.sum())
        return self

    def metrics(self) -> dict[str, float]:
        """MAE, RMSE, sMAPE (percent) and, when scales were given, MASE (NaN when no window
        had a defined scale); NaN throughout before any window was added."""
        n = self.values or float("nan")
        metrics = {
            "mae": self.abs_error / n,
            "rmse": float(np.sqrt(self.squared_error / n)),
            "smape": 100 * self.smape_ratio / n,
        }
        if self.with_mase:
            metrics["mase"] = (
                self.scaled_error / self.scaled_values if self.scaled_values else float("nan")
            )
        return metrics

    def per_step_mae(self) -> list[float]:
        """The MAE of each horizon step."""
        per_step = self.values // self.horizon or float("nan")
        return [float(v) for v in self.step_abs_error / per_step]


def forecast_metrics(
    predicted: np.ndarray, actual: np.ndarray, mase_scale: np.ndarray | None = None
) -> dict[str, float]:
    """MAE, RMSE, sMAPE (percent) and, given each window's in-sample naive MAE, MASE.

    Arrays are (windows, horizon, n_targets); ``mase_scale`` is (windows, 1, n_targets).
    MASE averages over the windows whose scale is defined (NaN where a series' history is
    constant, see `mase_scales`); NaN when no window has one, as dividing by a zero naive
    error would report ~1e10 and mean nothing.
    """
    return ForecastSums(actual.shape[1]).add(predicted, actual, mase_scale).metrics()


def mase_scales(
    windows: WindowArrays, layout: WindowLayout, scaler: Scaler, season: int | None
) -> np.ndarray:
    """Each window's MASE denominator: its series' (seasonal) naive MAE on observed history.

    Measured on the windows' own inputs (the history before each forecast origin) in
    original units, averaged per series, so no other split needs loading; lag = season,
    or 1 without a season or when the season fills the whole input window (no pair of
    values one season apart to compare). Returns (windows, 1, n_targets).

    NaN for a series whose history has no naive error (a constant target, up to float32
    rounding): MASE is undefined there, not a division by a tiny floor.
    """
    n_targets = len(layout.target_columns)
    lag = season if season and season < layout.lookback else 1
    history = to_original_units(
        windows.x[:, :, :n_targets], windows.series, scaler, layout.target_columns
    )
    naive_error = np.abs(history[:, lag:, :] - history[:, :-lag, :]).mean(axis=1)
    level = np.abs(history).mean(axis=1)
    per_series: dict[object, np.ndarray] = {}
    for s in np.unique(windows.series):
        mine = windows.series == s
        scale = naive_error[mine].mean(axis=0)
        tolerance = MASE_ZERO_TOLERANCE * np.maximum(level[mine].mean(axis=0), 1.0)
        per_series[s] = np.where(scale > tolerance, scale, np.nan)
    return np.stack([per_series[s] for s in windows.series])[:, None, :]


def naive_forecasts(
    windows: WindowArrays, layout: WindowLayout, season: int | None
) -> dict[str, np.ndarray]:
    """Baseline forecasts in scaled units, each (windows, horizon, n_targets).

    last_value repeats the last observed value; seasonal_naive repeats the value one
    season before each target step (taken from the input window).
    """
    n_targets = len(layout.target_columns)
    targets = windows.x[:, :, :n_targets]  # targets lead the input columns
    out = {"last_value": np.repeat(targets[:, -1:, :], layout.horizon, axis=1)}
    if season:
        steps = layout.lookback - season + (np.arange(layout.horizon) % season)
        out[f"seasonal_naive_{season}"] = targets[:, steps, :]
    return out


@dataclass(frozen=True)
class ForecastReport:
    """Test metrics in original units: overall, per horizon step and per series."""

    scored: list[Scored]
    per_step_mae: dict[str, list[float]]
    per_series_mae: dict[str, dict[str, float]]
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)
    """Each predictor's forecasts in original units, (windows, horizon, n_targets)."""
    actual: np.ndarray | None = None
    """The actual values in original units, (windows, horizon, n_targets)."""

    def worst_series(self, n: int = WORST_SERIES_SHOWN) -> list[str]:
        """Series with the highest model MAE, worst first."""
        return worst_series(self.per_series_mae, n)


def worst_series(
    per_series_mae: dict[str, dict[str, float]], n: int = WORST_SERIES_SHOWN
) -> list[str]:
    """The ``n`` series with the highest model MAE, worst first (ties in the dict's order)."""
    return sorted(per_series_mae, key=lambda s: -per_series_mae[s]["model"])[:n]


def evaluate_forecast(
    predicted_scaled: np.ndarray,
    windows: WindowArrays,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    mase_scale: np.ndarray | None = None,
    baselines: dict[str, np.ndarray] | None = None,
) -> ForecastReport:
    """The model's and the baselines' metrics in original units, on the same windows.

    Args:
        baselines: the baselines' scaled forecasts, aligned with ``windows`` (e.g. from
            `seqcast.modeling.baselines.history_forecasts`, which reads beyond the input
            window); by default `naive_forecasts` from the windows' inputs.
    """
    columns = layout.target_columns
    actual = to_original_units(windows.y, windows.series, scaler, columns)
    forecasts = {"model": to_original_units(predicted_scaled, windows.series, scaler, columns)}
    if baselines is None:
        baselines = naive_forecasts(windows, layout, season)
    for name, forecast in baselines.items():
        forecasts[name] = to_original_units(forecast, windows.series, scaler, columns)
    sums = {
        name: ForecastSums(layout.horizon).add(f, actual, mase_scale)
        for name, f in forecasts.items()
    }
    return ForecastReport(
        scored=[Scored(n, s.metrics()) for n, s in sums.items()],
        per_step_mae={n: s.per_step_mae() for n, s in sums.items()},
        per_series_mae=per_series_mae(forecasts, actual, windows.series),
        forecasts=forecasts,
        actual=actual,
    )


def per_series_mae(
    forecasts: dict[str, np.ndarray], actual: np.ndarray, series: np.ndarray
) -> dict[str, dict[str, float]]:
    """Each series' MAE per predictor, series in sorted order (``series``: each window's)."""
    errors = {name: np.abs(f - actual) for name, f in forecasts.items()}
    return {
        str(s): {n: float(e[series == s].mean()) for n, e in errors.items()}
        for s in np.unique(series)
    }


def forecast_table(
    windows: WindowArrays,
    forecasts: dict[str, np.ndarray],
    actual: np.ndarray,
    target_columns: list[str],
) -> pd.DataFrame:
    """Every test forecast as rows: series, origin (last input step), step (1..horizon),
    target, actual, then one column per predictor, all in original units.

    ``forecasts`` and ``actual`` are (windows, horizon, n_targets); the rows are ordered
    window, step, target, so a predictor's column mean is its MAE's forecast mean.
    """
    n, horizon, n_targets = actual.shape
    origin = pd.DatetimeIndex(windows.origin.astype("datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "series": np.repeat(windows.series.astype(str), horizon * n_targets),
            "origin": np.repeat(origin, horizon * n_targets),
            "step": np.tile(np.repeat(np.arange(1, horizon + 1, dtype=np.int32), n_targets), n),
            "target": np.tile(np.asarray(target_columns, dtype=object), n * horizon),
            "actual": actual.reshape(-1).astype(np.float64),
        }
    )
    for name, values in forecasts.items():
        frame[name] = values.reshape(-1).astype(np.float64)
    return frame


def confusion(predicted: np.ndarray, actual: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: rows are actual classes, columns predicted ones."""
    import tensorflow as tf  # here: the gate and the registry import this module

    matrix = tf.math.confusion_matrix(actual, predicted, num_classes=n_classes)
    return np.asarray(matrix, dtype=np.int64)


def per_class_metrics(matrix: np.ndarray, classes: list[str]) -> dict[str, dict[str, float]]:
    """Precision and recall of each class from a confusion matrix (0 where undefined)."""
    hits = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    return {
        c: {"precision": float(p), "recall": float(r), "support": int(n)}
        for c, p, r, n in zip(classes, precision, recall, actual, strict=True)
    }


def balanced_accuracy(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean recall over the classes present in ``actual``: a constant predictor scores
    1/k on k classes whatever their shares (accuracy gives it the majority's share)."""
    classes = np.unique(actual)
    if classes.size == 0:
        return float("nan")
    return float(np.mean([np.mean(predicted[actual == c] == c) for c in classes]))


def classify_metrics(predicted: np.ndarray, actual: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 of class ids ``predicted`` against ``actual``."""
    import keras

    f1 = keras.metrics.F1Score(average="macro")
    f1.update_state(keras.ops.one_hot(actual, n_classes), keras.ops.one_hot(predicted, n_classes))
    return {
        "accuracy": float(np.mean(predicted == actual)),
        "balanced_accuracy": balanced_accuracy(predicted, actual),
        "macro_f1": float(keras.ops.convert_to_numpy(f1.result())),
    }


def evaluate_classify(
    probabilities: np.ndarray, windows: WindowArrays, layout: WindowLayout, majority: int
) -> list[Scored]:
    """The model's and the majority class's accuracy and macro-F1."""
    n_classes = len(layout.classes)
    predicted = np.argmax(probabilities, axis=-1)
    return [
        Scored("model", classify_metrics(predicted, windows.y, n_classes)),
        Scored(
            "majority_class",
            classify_metrics(np.full_like(windows.y, majority), windows.y, n_classes),
        ),
    ]


def is_better(candidate: float, reference: float, metric: str, margin: float = 0.0) -> bool:
    """Whether ``candidate`` beats ``reference`` by a relative ``margin``; NaN never wins."""
    if not (np.isfinite(candidate) and np.isfinite(reference)):
        return bool(np.isfinite(candidate) and not np.isfinite(reference))
    if HIGHER_IS_BETTER[metric]:
        return candidate > reference * (1 + margin) if reference >= 0 else candidate > reference
    return candidate < reference * (1 - margin)
