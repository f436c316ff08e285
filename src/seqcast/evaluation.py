"""Evaluate: test metrics of a model, of naive baselines and of the current champion.

Forecast metrics are in original units (each window's series statistics undone), so
they are comparable across models fitted with different scalers. Lower is better for
MAE/RMSE; higher is better for accuracy and macro-F1.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from seqcast.scaling import Scaler
from seqcast.windowing import WindowArrays, WindowLayout

PRIMARY_METRIC = {"forecast": "mae", "classify": "macro_f1"}
HIGHER_IS_BETTER = {"mae": False, "rmse": False, "accuracy": True, "macro_f1": True}


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


def forecast_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    error = predicted - actual
    return {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}


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


def evaluate_forecast(
    predicted_scaled: np.ndarray,
    windows: WindowArrays,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
) -> list[Scored]:
    """The model's and the baselines' MAE and RMSE in original units."""
    columns = layout.target_columns
    actual = to_original_units(windows.y, windows.series, scaler, columns)
    scored = [
        Scored(
            "model",
            forecast_metrics(
                to_original_units(predicted_scaled, windows.series, scaler, columns), actual
            ),
        )
    ]
    for name, forecast in naive_forecasts(windows, layout, season).items():
        original = to_original_units(forecast, windows.series, scaler, columns)
        scored.append(Scored(name, forecast_metrics(original, actual)))
    return scored


def classify_metrics(predicted: np.ndarray, actual: np.ndarray, n_classes: int) -> dict[str, float]:
    f1 = keras.metrics.F1Score(average="macro")
    f1.update_state(keras.ops.one_hot(actual, n_classes), keras.ops.one_hot(predicted, n_classes))
    return {
        "accuracy": float(np.mean(predicted == actual)),
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
