"""AR: a per-series autoregressive challenger to the networks, beside ETS.

Cyclic series whose period drifts (sunspots' ~11-year cycle, lynx) are the textbook case for
an autoregression: ETS has no cycle to offer and a seasonal naive needs a fixed period. On
statsmodels' yearly sunspots an AR(9) fitted on the training rows forecasts the 58 test
windows at MAE 20.5, below every network seqcast's search trained there (24.2) and the bare
Keras GRU script (20.9) (`benchmarks/README.md`, figure 7).

The order is chosen as R's ``ar()`` chooses it: the lowest AIC over orders 0..``10 log10(n)``
(fewer where the series is short), each fitted by least squares with a constant on one
common sample (statsmodels' `ar_select_order`), then the chosen order is refitted on every
value (`AutoReg`). Forecasts at many origins use the fitted coefficients held fixed: the
h-step forecast from the ``order`` values up to each origin, by the AR recursion, vectorised
over origins (no model object per origin); later observations (validation, test) enter as
inputs, never the coefficients.

Missing values (gaps) are filled by linear interpolation, as ETS fills them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqcast.modeling.statistical import MAX_FIT_ROWS, MIN_FIT_ROWS, fill_gaps, is_constant

ORDER_CAP = 48
"""The highest order tried on any series: enough for two days of hourly data or four years
of months, and it bounds a fit's cost on long series."""


@dataclass(frozen=True)
class ArFit:
    """A fitted autoregression of one series (one target column).

    ``intercept`` + sum of ``coefficients[k] * y[t - 1 - k]`` is the forecast of ``y[t]``;
    an empty ``coefficients`` forecasts the intercept (order 0: the training mean).
    """

    intercept: float
    coefficients: list[float]

    @property
    def order(self) -> int:
        return len(self.coefficients)

    def to_json(self) -> dict[str, Any]:
        return {
            "intercept": float(self.intercept),
            "coefficients": [float(c) for c in self.coefficients],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArFit:
        return cls(
            intercept=float(data["intercept"]),
            coefficients=[float(c) for c in data["coefficients"]],
        )


LAST_VALUE_FIT = ArFit(0.0, [1.0])
"""The fit of a series too short or too flat to regress: each forecast repeats the last value."""


def max_order(n: int) -> int:
    """The highest order tried on ``n`` values: ``10 log10(n)`` (R's ``ar()`` default), at
    most a third of the values (each order's regression keeps two thirds of them as rows)
    and at most `ORDER_CAP`."""
    if n < 2:
        return 0
    return max(0, min(int(10 * math.log10(n)), (n - 1) // 3, ORDER_CAP))


def fit_ar(train_values: np.ndarray) -> ArFit:
    """Fit an AR(p) with a constant to one series' training values, p by AIC.

    Only the last `MAX_FIT_ROWS` values are fitted, as for ETS. Fitting is least squares,
    so deterministic.

    Args:
        train_values: (steps,) one series' training values in original units, on its
            regular grid; NaN at gaps, which are filled by linear interpolation.

    Returns:
        The fit. A constant series, or one shorter than `MIN_FIT_ROWS`, gets
        `LAST_VALUE_FIT`, as does one whose regression fails (a singular design).

    Raises:
        ValueError: if ``train_values`` is empty or all NaN.
    """
    y = fill_gaps(train_values)[-MAX_FIT_ROWS:]
    if len(y) < MIN_FIT_ROWS or is_constant(y):
        return LAST_VALUE_FIT
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # statsmodels' chatter on short or odd series
        try:
            selected = ar_select_order(y, maxlag=max_order(len(y)), ic="aic", trend="c")
            order = max(selected.ar_lags or [0])
            params = np.asarray(AutoReg(y, lags=order, trend="c").fit().params, np.float64)
        except (ValueError, np.linalg.LinAlgError):
            return LAST_VALUE_FIT
    if not np.all(np.isfinite(params)):
        return LAST_VALUE_FIT
    return ArFit(intercept=float(params[0]), coefficients=[float(c) for c in params[1:]])


def ar_forecasts(values: np.ndarray, fit: ArFit, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The forecast made at each origin from the values up to it, coefficients held fixed.

    An origin with fewer than ``order`` values before it reads the series' first value in
    place of the missing ones.

    Args:
        values: (steps,) one series' values in original units; NaN gaps are filled by
            linear interpolation first.
        fit: the series' `fit_ar` result.
        origins: (n,) int indices into ``values`` of each forecast's last observed step.
        horizon: steps ahead to forecast (>= 1).

    Returns:
        (n, horizon) float64.
    """
    if horizon <= 0:
        raise ValueError(f"`horizon` must be a positive integer. Received: horizon={horizon}")
    origins = np.asarray(origins, dtype=np.int64).reshape(-1)
    if not len(origins):
        return np.empty((0, horizon), np.float64)
    y = fill_gaps(values)
    if origins.min() < 0 or origins.max() >= len(y):
        raise ValueError(
            f"`origins` must index `values` (0..{len(y) - 1}). "
            f"Received: {int(origins.min())}..{int(origins.max())}"
        )
    coefficients = np.asarray(fit.coefficients, np.float64)  # (order,) lag 1 first
    p = len(coefficients)
    # (n, order) the last `order` values at each origin, most recent first
    lags = y[np.maximum(origins[:, None] - np.arange(p)[None, :], 0)]
    out = np.empty((len(origins), horizon), np.float64)
    for h in range(horizon):
        out[:, h] = fit.intercept + lags @ coefficients
        if p:
            lags = np.concatenate([out[:, h : h + 1], lags[:, :-1]], axis=1)
    return out


def forecast_latest(history: np.ndarray, fit: ArFit, horizon: int) -> np.ndarray:
    """The forecast after the last value of ``history`` (the series' recent values), as
    evaluation forecast from every test origin: the training fit's coefficients on the
    last ``order`` values. (horizon,) float64."""
    history = np.asarray(history, dtype=np.float64).reshape(-1)
    return ar_forecasts(history, fit, np.array([len(history) - 1]), horizon)[0]
