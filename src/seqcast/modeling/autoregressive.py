"""AR: a per-series autoregressive challenger to the networks, beside ETS.

Cyclic series whose period drifts (sunspots' ~11-year cycle, lynx) are the textbook case for
an autoregression: ETS has no cycle to offer and seasonal naive needs a fixed period. On
statsmodels' yearly sunspots an AR(9) fitted on the training rows forecasts the 58 test
windows at MAE 20.9, where seqcast's best network scored 24.2 and ETS 41.4; on the monthly
airline series AR scored 13.4 against ETS's 16.1 (`benchmarks/README.md`, figure 7).

The order is the lowest AICc over orders 0..``10 log10(n)`` (R's ``ar()`` range; fewer where
the series is short), each fitted by least squares with a constant on one common sample;
then the chosen order is refitted on every value. AICc rather than AIC: ETS chooses its
variant by AICc too, and on a few hundred values AIC's lighter penalty picked long orders
that forecast worse (sunspots' 216 training years: AIC order 18, test MAE 23.1; AICc order
9, 20.9). The fits and the criterion are statsmodels' `AutoReg` and its ``aicc`` (the tests
check both against it), computed here with numpy's least squares on one lag matrix: 31
`AutoReg` fits of a 1,000-value series took 90 ms, hours of CPU at 100,000 series; the same
regressions in numpy take 9 ms.

Forecasts at many origins use the fitted coefficients held fixed: the h-step forecast from
the ``order`` values up to each origin, by the AR recursion, vectorised over origins (no
model object per origin). Later observations (validation, test) enter as inputs, never the
coefficients. Missing values (gaps) are filled by linear interpolation, as ETS fills them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqcast.modeling.statistical import (
    MAX_FIT_ROWS,
    MIN_FIT_ROWS,
    fill_gaps,
    forecast_inputs,
    is_constant,
)

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
    """Fit an AR(p) with a constant to one series' training values, p by AICc.

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
    top = max_order(len(y))
    with np.errstate(all="ignore"):
        criteria = aicc_by_order(y, top)
        if not np.isfinite(criteria).any():
            return LAST_VALUE_FIT
        order = int(np.nanargmin(criteria))
        params, _ = _least_squares(*_regression(y, order, order), order)
    if not np.all(np.isfinite(params)):
        return LAST_VALUE_FIT
    return ArFit(intercept=float(params[0]), coefficients=[float(c) for c in params[1:]])


def _regression(y: np.ndarray, order: int, hold_back: int) -> tuple[np.ndarray, np.ndarray]:
    """The lag matrix (rows, order) with lag 1 first, and the values it predicts (rows,):
    one row per value from index ``hold_back`` on."""
    rows = len(y) - hold_back
    lags = np.column_stack(
        [y[hold_back - k : hold_back - k + rows] for k in range(1, order + 1)]
        or [np.empty((rows, 0))]
    )
    return lags, y[hold_back:]


def _least_squares(lags: np.ndarray, target: np.ndarray, order: int) -> tuple[np.ndarray, float]:
    """(intercept + the first ``order`` lag coefficients, residual sum of squares)."""
    design = np.column_stack([np.ones(len(target)), lags[:, :order]])
    params = np.linalg.lstsq(design, target, rcond=None)[0]
    residual = target - design @ params
    return params, float(residual @ residual)


def aicc_by_order(y: np.ndarray, top: int) -> np.ndarray:
    """(top + 1,) the AICc of AR(0..top) with a constant, each fitted on the values from
    index ``top`` on (statsmodels' ``AutoReg(y, p, hold_back=top).fit().aicc``); NaN where a
    fit has no residual variance or too few rows."""
    lags, target = _regression(y, top, top)
    nobs = len(target)
    out = np.full(top + 1, np.nan)
    for p in range(top + 1):
        _, rss = _least_squares(lags, target, p)
        k = p + 2  # intercept, coefficients and the residual variance
        if rss <= 0 or nobs - k - 1 <= 0:
            continue
        loglike = -0.5 * nobs * (math.log(2 * math.pi * rss / nobs) + 1)
        out[p] = -2 * loglike + 2 * k + 2 * k * (k + 1) / (nobs - k - 1)
    return out


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
    y, origins = forecast_inputs(values, origins, horizon)
    if not len(origins):
        return np.empty((0, horizon), np.float64)
    coefficients = np.asarray(fit.coefficients, np.float64)  # (order,) lag 1 first
    p = len(coefficients)
    # (n, order) the last `order` values at each origin, most recent first
    lags = y[np.maximum(origins[:, None] - np.arange(p)[None, :], 0)]
    out = np.empty((len(origins), horizon), np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # an explosive fit: inf loses the gate
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
