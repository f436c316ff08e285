"""Forecast intervals: how good they are, and how baselines and calibration get them.

Every array of quantiles is (windows, horizon, n_targets, n_quantiles), sorted along the
last axis, beside actuals (windows, horizon, n_targets). Intervals are read from pairs of
levels that add up to 1: 0.1 and 0.9 make the central 80% interval.

- Coverage: the share of actuals inside a central interval (nominal 0.8 for 0.1-0.9).
- Weighted quantile loss (wQL): per level, 2 x the summed pinball loss over the summed
  absolute actuals, then averaged over the levels, as GluonTS and Amazon Forecast define it
  (the factor 2 makes the median's wQL its weighted absolute percentage error); a
  discrete approximation of the CRPS scaled by the actuals' size. Lower is better.
- Baselines and statistical challengers have no quantile head: their intervals are their
  point forecast plus the empirical quantiles of their validation residuals (actual minus
  forecast), per horizon step and target, in the run's scaled units (`residual_offsets`).
- Conformal calibration of the network's head (`conformal_shifts`): each quantile is
  shifted by the empirical quantile, at its own level, of the validation actuals' distance
  from it, so on validation exactly that share of actuals lies below it.

Offsets and shifts are in scaled units, (n_quantiles, horizon, n_targets); applied before
each series' scaling is undone, they widen a series' interval by its own spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

COVERAGE_TOLERANCE = 0.15
"""An interval whose test coverage is further than this from nominal is flagged (an 80%
interval covering under 65% or over 95%)."""

_PAIR_TOLERANCE = 1e-9


def central_intervals(levels: list[float]) -> list[tuple[int, int, float]]:
    """(lower index, upper index, nominal coverage) of each pair of levels adding up to 1,
    widest first."""
    out = []
    for i, low in enumerate(levels):
        for j in range(len(levels) - 1, i, -1):
            if abs(low + levels[j] - 1.0) < _PAIR_TOLERANCE:
                out.append((i, j, levels[j] - low))
    return out


def coverage_name(nominal: float) -> str:
    """The metric's name for a central interval: ``coverage_80`` for 0.8."""
    return f"coverage_{100 * nominal:g}"


def quantile_column(target: str, level: float) -> str:
    """The prediction file's column of one quantile: ``load_q0.1``."""
    return f"{target}_q{level:g}"


def predictor_of(kind: str, params: dict[str, Any]) -> str:
    """The evaluation's name of a registered kind (the key of its stored offsets)."""
    if kind == "network":
        return "model"
    if kind == "seasonal_naive":
        return f"seasonal_naive_{int(params['season'])}"
    return kind


def _pinball(quantiles: np.ndarray, actual: np.ndarray, levels: list[float]) -> np.ndarray:
    """Pinball loss of every forecast, same shape as ``quantiles``."""
    error = actual[..., None] - quantiles
    q = np.asarray(levels, dtype=np.float64)
    return np.maximum(q * error, (q - 1.0) * error)


@dataclass
class IntervalSums:
    """Running sums of `quantile_metrics`' terms for one predictor, so that interval scores
    over many blocks of windows (evaluation streams the test split, issue 18) equal those
    over one array, up to float rounding.

    ``add`` takes quantiles (windows, horizon, n_targets, n_quantiles) and actuals
    (windows, horizon, n_targets), both in original units.
    """

    levels: list[float]
    horizon: int
    values: int = 0
    inside: np.ndarray = field(init=False)
    """(n_intervals, horizon): actuals inside each central interval, per step."""
    pinball: np.ndarray = field(init=False)
    """(horizon, n_quantiles): summed pinball loss per step and level."""
    absolute: np.ndarray = field(init=False)
    """(horizon,): summed |actual| per step."""

    def __post_init__(self) -> None:
        self.inside = np.zeros((len(central_intervals(self.levels)), self.horizon))
        self.pinball = np.zeros((self.horizon, len(self.levels)))
        self.absolute = np.zeros(self.horizon)

    def add(self, quantiles: np.ndarray, actual: np.ndarray) -> IntervalSums:
        for k, (low, high, _) in enumerate(central_intervals(self.levels)):
            inside = (actual >= quantiles[..., low]) & (actual <= quantiles[..., high])
            self.inside[k] += inside.sum(axis=(0, 2))
        self.pinball += _pinball(quantiles, actual, self.levels).sum(axis=(0, 2), dtype=np.float64)
        self.absolute += np.abs(actual).sum(axis=(0, 2), dtype=np.float64)
        self.values += actual.size
        return self

    def metrics(self) -> dict[str, float]:
        """Coverage of each central interval and the wQL (mean over levels of 2 x summed
        pinball loss / summed |actual|)."""
        metrics = {
            coverage_name(nominal): float(self.inside[k].sum() / (self.values or np.nan))
            for k, (_, _, nominal) in enumerate(central_intervals(self.levels))
        }
        metrics["wql"] = float(_per_level_wql(self.pinball.sum(axis=0), self.absolute.sum()))
        return metrics

    def per_step(self) -> dict[str, list[float]]:
        """`metrics` per horizon step: each metric's list has ``horizon`` values."""
        per_step = {"wql": [float(v) for v in _per_level_wql(self.pinball, self.absolute[:, None])]}
        per_step_values = self.values / self.horizon or np.nan
        for k, (_, _, nominal) in enumerate(central_intervals(self.levels)):
            per_step[coverage_name(nominal)] = [float(v) for v in self.inside[k] / per_step_values]
        return per_step


def _per_level_wql(pinball: np.ndarray, absolute: np.ndarray | float) -> np.ndarray:
    """Mean over levels (the last axis) of 2 * summed pinball / summed |actual|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((2.0 * pinball / absolute).mean(axis=-1))


def quantile_metrics(
    quantiles: np.ndarray, actual: np.ndarray, levels: list[float]
) -> dict[str, float]:
    """Coverage of each central interval and the wQL over all test forecasts.

    Args:
        quantiles: (windows, horizon, n_targets, n_quantiles) in original units.
        actual: (windows, horizon, n_targets) in original units.
        levels: the quantile levels, sorted.
    """
    return IntervalSums(levels, actual.shape[1]).add(quantiles, actual).metrics()


def per_step_quantile_metrics(
    quantiles: np.ndarray, actual: np.ndarray, levels: list[float]
) -> dict[str, list[float]]:
    """`quantile_metrics` per horizon step: each metric's list has ``horizon`` values."""
    return IntervalSums(levels, actual.shape[1]).add(quantiles, actual).per_step()


def residual_offsets(forecast: np.ndarray, actual: np.ndarray, levels: list[float]) -> np.ndarray:
    """Empirical quantiles of validation residuals (actual - forecast) per step and target.

    Args:
        forecast, actual: (windows, horizon, n_targets), same (scaled) units.

    Returns:
        (n_quantiles, horizon, n_targets), non-decreasing along the first axis.

    Raises:
        ValueError: no windows to take quantiles of.
    """
    if len(actual) == 0:
        raise ValueError("empirical intervals need at least one validation window; got none")
    return np.quantile(actual - forecast, levels, axis=0).astype(np.float64)


def conformal_shifts(quantiles: np.ndarray, actual: np.ndarray, levels: list[float]) -> np.ndarray:
    """Per level, step and target: the ``level`` quantile of (actual - that quantile) on
    validation windows, (n_quantiles, horizon, n_targets). Adding it to a quantile makes the
    share of validation actuals below it equal to its level.

    Raises:
        ValueError: no windows to calibrate on.
    """
    if len(actual) == 0:
        raise ValueError("calibration needs at least one validation window; got none")
    residual = actual[..., None] - quantiles  # (windows, horizon, n_targets, n_quantiles)
    return np.stack(
        [np.quantile(residual[..., k], q, axis=0) for k, q in enumerate(levels)]
    ).astype(np.float64)


def with_offsets(point: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Quantiles (windows, horizon, n_targets, n_quantiles) of a point forecast (windows,
    horizon, n_targets) plus per-level offsets (n_quantiles, horizon, n_targets)."""
    return np.sort(point[..., None] + np.moveaxis(offsets, 0, -1)[None], axis=-1)


def shifted(quantiles: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``quantiles`` plus calibration ``shifts`` (n_quantiles, horizon, n_targets), re-sorted
    so shifts of neighbouring levels can never make them cross."""
    return np.sort(quantiles + np.moveaxis(shifts, 0, -1)[None], axis=-1)


def coverage_flags(
    scores: dict[str, float],
    predictor: str = "model",
    calibrated: bool = False,
    tolerance: float = COVERAGE_TOLERANCE,
) -> list[str]:
    """Sentences for the report on each central interval of ``predictor`` whose test
    coverage is far from nominal (empty when every one is within ``tolerance``); the advice
    depends on where the interval came from (the network's head, calibrated or not, or a
    challenger's validation residuals)."""
    if predictor != "model":
        advice = "its interval comes from validation residuals, which test does not resemble"
    elif calibrated:
        advice = "it was calibrated on validation windows that test does not resemble"
    else:
        advice = "try `evaluate.calibrate: true` or check for a shift between validation and test"
    flags = []
    for name, value in scores.items():
        if not name.startswith("coverage_"):
            continue
        nominal = float(name.removeprefix("coverage_")) / 100
        if np.isfinite(value) and abs(value - nominal) > tolerance:
            side = "too narrow" if value < nominal else "too wide"
            flags.append(
                f"The {100 * nominal:g}% interval of {predictor} covered {100 * value:.1f}% of "
                f"the test actuals ({side}; expected {100 * nominal:g}% +/- "
                f"{100 * tolerance:g} points): do not plan with it as is; {advice}."
            )
    return flags
