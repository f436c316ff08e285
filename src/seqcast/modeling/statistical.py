"""ETS: a per-series exponential-smoothing challenger to the networks.

On smooth periodic series a statistical model often beats a global network by a wide
margin, so every run also fits additive ETS (error, trend, season) per series and scores
it like the model. Three trend variants (none, additive, damped), with additive
seasonality when a season is known and the series holds two full seasons, are fitted by
maximum likelihood (statsmodels' `ETSModel`) and the lowest AICc is kept. Seasonal
variants take their initial seasonal states, level and trend from the heuristic
decomposition (Hyndman & Athanasopoulos, section 2.6) and estimate only the smoothing
parameters: estimating one initial state per step of the season was 30x slower (6 s per
variant for an hourly series with a daily season) for the same test error.

Forecasts at many origins come from one filtering pass per series with the fitted
parameters held fixed (the component-form recursions statsmodels uses, so the forecast at
the end of the training rows equals statsmodels' own), then the closed-form h-step
forecast from the states at each origin: no refit per origin, and later observations
(validation, test) update the state only.

Missing values (gaps) are filled by linear interpolation between their observed
neighbours before fitting and filtering; ETS needs a regular series.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Trend = Literal["none", "add", "damped"]
TRENDS: tuple[Trend, ...] = ("none", "add", "damped")

MAX_FIT_ROWS = 1000
"""Fit on at most max(10 seasons, this many) of the last training values: the cost of a
fit grows with its length, and the recent past is what the forecast needs."""
MIN_FIT_ROWS = 10
"""Fewer values than this: no fit, the forecast repeats the last value."""


@dataclass(frozen=True)
class EtsFit:
    """A fitted additive ETS variant of one series (one target column).

    ``params`` holds ``alpha``, ``beta``, ``gamma``, ``phi`` (the smoothing and damping
    parameters; 0 / 1 where the variant lacks the component), ``initial_level``,
    ``initial_trend`` and ``start``: the index of the training values where the initial
    states apply (the fit used the values from there on). ``initial_seasonal`` lists the
    seasonal states of the ``season`` steps before ``start``, oldest first (empty without
    a season), so ``initial_seasonal[k]`` is the seasonal term of step ``start + k``.
    """

    trend: Trend
    season: int | None
    params: dict[str, float]
    initial_seasonal: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "trend": self.trend,
            "season": self.season,
            "params": {k: float(v) for k, v in self.params.items()},
            "initial_seasonal": [float(v) for v in self.initial_seasonal],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EtsFit:
        trend = data["trend"]
        if trend not in TRENDS:
            raise ValueError(f"EtsFit trend must be one of {TRENDS}. Received: trend={trend!r}")
        season = data.get("season")
        return cls(
            trend=trend,
            season=int(season) if season is not None else None,
            params={str(k): float(v) for k, v in data["params"].items()},
            initial_seasonal=[float(v) for v in data.get("initial_seasonal", [])],
        )


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """``values`` (1-D) as float64 with NaNs linearly interpolated (ends held flat).

    Raises:
        ValueError: if ``values`` holds no finite value.
    """
    out = np.asarray(values, dtype=np.float64).reshape(-1).copy()
    missing = ~np.isfinite(out)
    if missing.all():
        raise ValueError(
            "A statistical fit (ETS, AR) needs at least one observed value. "
            f"Received {len(out)} value(s), none finite"
        )
    if missing.any():
        index = np.arange(len(out))
        out[missing] = np.interp(index[missing], index[~missing], out[~missing])
    return out


def _flat(level: float, start: int) -> EtsFit:
    """A fit that forecasts the last value: short series, and constant ones."""
    params = {"alpha": 1.0, "beta": 0.0, "gamma": 0.0, "phi": 1.0}
    return EtsFit(
        "none",
        None,
        {**params, "initial_level": level, "initial_trend": 0.0, "start": float(start)},
    )


def fit_history(season: int | None) -> int:
    """The most values a fit (and so a refit at prediction time) reads: max(10 seasons,
    `MAX_FIT_ROWS`)."""
    return max(10 * season, MAX_FIT_ROWS) if season else MAX_FIT_ROWS


def _fit_rows(n: int, season: int | None) -> int:
    """Where the fit starts in ``n`` training values (a whole number of seasons back)."""
    keep = fit_history(season)
    if n <= keep:
        return 0
    period = season or 1
    return -(-(n - keep) // period) * period


def _n_free(trend: Trend, season: int | None, estimated: bool) -> int:
    """Parameters a variant estimates, plus the residual variance (as AICc counts them)."""
    smoothing = 1 + (trend != "none") + (season is not None) + (trend == "damped")
    states = (1 + (trend != "none") + (season - 1 if season else 0)) if estimated else 0
    return smoothing + states + 1


def _fit_variant(
    y: np.ndarray, trend: Trend, season: int | None, start: int
) -> tuple[float, EtsFit]:
    """Fit one variant to ``y`` (finite, the values from ``start`` on); returns (AICc, fit)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # 1 s; only fits need it

    estimated = season is None
    model = ETSModel(
        y,
        error="add",
        trend=None if trend == "none" else "add",
        damped_trend=trend == "damped",
        seasonal="add" if season else None,
        seasonal_periods=season,
        initialization_method="estimated" if estimated else "heuristic",
    )
    result = model.fit(disp=False, maxiter=1000)
    names = list(model.param_names)
    values = dict(zip(names, np.asarray(result.params, dtype=np.float64), strict=True))
    params = {
        "alpha": float(values["smoothing_level"]),
        "beta": float(values.get("smoothing_trend", 0.0)),
        "gamma": float(values.get("smoothing_seasonal", 0.0)),
        "phi": float(values.get("damping_trend", 1.0)),
        "initial_level": float(result.initial_level),
        "initial_trend": float(getattr(result, "initial_trend", 0.0) or 0.0),
        "start": float(start),
    }
    initial_seasonal = [float(v) for v in np.asarray(result.initial_seasonal)] if season else []
    fit = EtsFit(trend, season, params, initial_seasonal)
    # AICc from the one-step errors of our own recursion: the same likelihood statsmodels
    # maximised (concentrated Gaussian), counted the same way for every variant.
    sse = float(np.sum(_one_step_errors(y, fit) ** 2))
    n = len(y)
    k = _n_free(trend, season, estimated)
    if n - k - 1 <= 0 or not math.isfinite(sse):
        return math.inf, fit
    loglike = -0.5 * n * (math.log(2 * math.pi * max(sse, 1e-300) / n) + 1)
    return -2 * loglike + 2 * k + 2 * k * (k + 1) / (n - k - 1), fit


def _variants(n: int, season: int | None) -> list[tuple[Trend, int | None]]:
    """The variants ``n`` values can support, in the order tried.

    With a season and two full cycles (and enough values for the heuristic start) only
    seasonal variants are fitted; the non-seasonal ones are the fallback when none of
    them can be. Each variant needs more values than it has parameters.
    """
    seasons: list[int | None] = []
    if season and season > 1 and n >= max(2 * season, 10 + 2 * (season // 2)):
        seasons.append(season)
    seasons.append(None)
    return [
        (trend, s) for s in seasons for trend in TRENDS if n - _n_free(trend, s, s is None) - 1 > 0
    ]


def is_constant(y: np.ndarray) -> bool:
    """Whether ``y`` is flat to float precision (nothing to fit: the last value forecasts it)."""
    scale = max(1.0, float(np.max(np.abs(y))))
    return float(np.ptp(y)) <= 1e-10 * scale


def fit_ets(train_values: np.ndarray, season: int | None) -> EtsFit:
    """Fit additive ETS variants to one series' training values and keep the lowest AICc.

    Variants: trend none, additive or damped, all with additive seasonality when
    ``season`` is given and the values hold at least two full seasons (the non-seasonal
    ones are then only the fallback if no seasonal one can be fitted). Only the last
    max(10 seasons, `MAX_FIT_ROWS`) values are fitted (a whole number of seasons back), so
    a long series costs no more than a moderate one. Fitting is deterministic (L-BFGS from
    fixed start values).

    Args:
        train_values: (steps,) one series' training values in original units, on its
            regular grid; NaN at gaps, which are filled by linear interpolation.
        season: the seasonal period in steps, or None.

    Returns:
        The chosen fit. A constant series, or one shorter than `MIN_FIT_ROWS`, gets a
        flat fit that repeats the last value.

    Raises:
        ValueError: if ``train_values`` is empty or all NaN, or ``season`` is not positive.
    """
    if season is not None and season <= 0:
        raise ValueError(f"`season` must be a positive integer or None. Received: season={season}")
    y_all = fill_gaps(train_values)
    start = _fit_rows(len(y_all), season)
    y = y_all[start:]
    if len(y) < MIN_FIT_ROWS or is_constant(y):
        return _flat(float(y[-1]), start)
    best: tuple[float, EtsFit] | None = None
    for trend, s in _variants(len(y), season):
        if best is not None and s != best[1].season:
            break  # a seasonal variant was fitted: the non-seasonal ones are only a fallback
        candidate = _try_variant(y, trend, s, start)
        if candidate is None or not math.isfinite(candidate[0]):
            continue
        if best is None or candidate[0] < best[0]:
            best = candidate
    if best is None:
        return _flat(float(y[-1]), start)
    return best[1]


def _try_variant(
    y: np.ndarray, trend: Trend, season: int | None, start: int
) -> tuple[float, EtsFit] | None:
    """`_fit_variant` with statsmodels' warnings silenced; None if it cannot be fitted."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, ValueWarning

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # statsmodels warns when L-BFGS stops early or the likelihood overflows on the
        # way; the fit is still usable and AICc decides among variants.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ValueWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return _fit_variant(y, trend, season, start)
        except (ValueError, np.linalg.LinAlgError):
            return None  # too short or degenerate for this variant: the caller tries others


def _states(y: np.ndarray, fit: EtsFit, start: int) -> tuple[np.ndarray, ...]:
    """Filter ``y[start:]`` with ``fit``'s parameters, its initial states applying at ``start``.

    Returns:
        level, slope: (len(y) + 1,) index ``i + 1`` holds the state after step ``i``; index
        ``start`` the initial state (NaN before it). seasonal: (len(y) + m,) index ``i + m``
        holds the seasonal state updated at step ``i``, so index ``j`` is the term step
        ``j`` uses (the initial states fill ``start .. start + m - 1``). one_step:
        (len(y),) the one-step-ahead forecast of each step (NaN before ``start``).
    """
    p = fit.params
    alpha, phi = float(p["alpha"]), float(p["phi"])
    m = fit.season or 0
    has_trend = fit.trend != "none"
    # statsmodels' component form: beta* = beta / alpha, gamma* = gamma / (1 - alpha).
    beta_star = float(p["beta"]) / alpha if has_trend and alpha > 0 else 0.0
    gamma_star = float(p["gamma"]) / (1 - alpha) if m and alpha < 1 else 0.0
    if fit.trend != "damped":
        phi = 1.0
    n = len(y)
    levels = [math.nan] * (n + 1)
    slopes = [math.nan] * (n + 1)
    one_step = [math.nan] * n
    seasonal = [0.0] * (n + m)
    if m:
        seasonal[start : start + m] = [float(v) for v in fit.initial_seasonal]
    values = y.tolist()
    lv = float(p["initial_level"])
    bv = float(p["initial_trend"]) if has_trend else 0.0
    levels[start], slopes[start] = lv, bv
    for i in range(start, n):
        s_prev = seasonal[i]  # the term of step i, updated one season ago (0 without one)
        damped = phi * bv
        one_step[i] = lv + damped + s_prev
        new_level = alpha * (values[i] - s_prev) + (1 - alpha) * (lv + damped)
        bv = beta_star * (new_level - lv) + (1 - beta_star) * damped
        if m:
            seasonal[i + m] = gamma_star * (values[i] - new_level) + (1 - gamma_star) * s_prev
        lv = new_level
        levels[i + 1], slopes[i + 1] = lv, bv
    return np.asarray(levels), np.asarray(slopes), np.asarray(seasonal), np.asarray(one_step)


def _one_step_errors(y: np.ndarray, fit: EtsFit) -> np.ndarray:
    """One-step-ahead errors of ``fit`` over ``y`` (all of it: the fit starts at index 0)."""
    return y - _states(y, fit, 0)[3]


def _damped_sums(phi: float, horizon: int) -> np.ndarray:
    """(horizon,) phi + phi^2 + ... + phi^h for h = 1..horizon (h itself when phi = 1)."""
    return np.cumsum(phi ** np.arange(1, horizon + 1, dtype=np.float64))


def _closed_form(
    level: np.ndarray,
    slope: np.ndarray,
    season_terms: np.ndarray | None,
    fit: EtsFit,
    horizon: int,
) -> np.ndarray:
    """(n, horizon) h-step forecasts from states (n,) and each step's seasonal term."""
    forecast = np.repeat(level[:, None], horizon, axis=1)
    if fit.trend != "none":
        phi = float(fit.params["phi"]) if fit.trend == "damped" else 1.0
        forecast = forecast + slope[:, None] * _damped_sums(phi, horizon)[None, :]
    if season_terms is not None:
        forecast = forecast + season_terms
    return forecast


def forecast_inputs(
    values: np.ndarray, origins: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """A fitted forecaster's checked inputs (ETS's and AR's): ``values`` gap-filled
    (`fill_gaps`; empty when there are no origins) and ``origins`` as (n,) int64.

    Raises:
        ValueError: if ``horizon`` is not positive or an origin does not index ``values``.
    """
    if horizon <= 0:
        raise ValueError(f"`horizon` must be a positive integer. Received: horizon={horizon}")
    origins = np.asarray(origins, dtype=np.int64).reshape(-1)
    if not len(origins):
        return np.empty(0, np.float64), origins
    y = fill_gaps(values)
    if origins.min() < 0 or origins.max() >= len(y):
        raise ValueError(
            f"`origins` must index `values` (0..{len(y) - 1}). "
            f"Received: {int(origins.min())}..{int(origins.max())}"
        )
    return y, origins


def ets_forecasts(values: np.ndarray, fit: EtsFit, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The forecast made at each origin with the fitted parameters held fixed.

    One filtering pass over ``values``: the state at an origin has been updated by every
    value up to and including it, so values past the training rows (validation, test)
    update the state but never the parameters. Gaps (NaN) are filled by linear
    interpolation first. Origins before the fit's ``start`` (only when the training
    values were longer than the stretch fitted) get a second pass from the first step in
    the same seasonal phase, from the fitted initial states; an origin before even that
    forecasts from the initial states themselves.

    Args:
        values: (steps,) one series' values in original units, starting where the training
            values started; may run past them.
        fit: the series' `fit_ets` result.
        origins: (n,) int indices into ``values`` of each forecast's last observed step.
        horizon: steps ahead to forecast (>= 1).

    Returns:
        (n, horizon) float64.
    """
    y, origins = forecast_inputs(values, origins, horizon)
    out = np.empty((len(origins), horizon), np.float64)
    if not len(origins):
        return out
    start = int(fit.params.get("start", 0.0))
    late = origins >= start
    out[late] = _forecast_from(y, fit, start, origins[late], horizon)
    early_start = start % (fit.season or 1)
    middle = ~late & (origins >= early_start)
    out[middle] = _forecast_from(y, fit, early_start, origins[middle], horizon)
    first = origins < early_start
    if first.any():
        steps = origins[first][:, None] + np.arange(1, horizon + 1)[None, :]
        terms = None
        if fit.season:
            terms = np.asarray(fit.initial_seasonal)[(steps - early_start) % fit.season]
        n_first = int(first.sum())
        out[first] = _closed_form(
            np.full(n_first, float(fit.params["initial_level"])),
            np.full(n_first, float(fit.params["initial_trend"])),
            terms,
            fit,
            horizon,
        )
    return out


def _forecast_from(
    y: np.ndarray, fit: EtsFit, start: int, origins: np.ndarray, horizon: int
) -> np.ndarray:
    """Forecasts at ``origins`` (all >= ``start``), filtering from ``start``."""
    if not len(origins):
        return np.empty((0, horizon), np.float64)
    level, slope, seasonal, _ = _states(y[: int(origins.max()) + 1], fit, start)
    terms = None
    if fit.season:
        m = fit.season
        steps = np.arange(1, horizon + 1)
        # Step origin + h uses the term updated a whole number of seasons before it.
        back = steps - m * (-(-steps // m))  # in (-m, 0]
        terms = seasonal[origins[:, None] + back[None, :] + m]
    return _closed_form(level[origins + 1], slope[origins + 1], terms, fit, horizon)


def forecast_latest(history: np.ndarray, fit: EtsFit, horizon: int) -> np.ndarray:
    """The forecast after the last value of ``history``, refitting ``fit``'s variant.

    For batch prediction, where only recent rows of a series are at hand: the same trend,
    damping and season are refitted on ``history`` (a shorter history drops the season,
    then the trend, as `fit_ets` would), then forecast from its end.

    Args:
        history: (steps,) recent values of one series in original units; NaN gaps are
            filled by linear interpolation.
        fit: the series' fit from training (chooses the variant).
        horizon: steps ahead (>= 1).

    Returns:
        (horizon,) float64.
    """
    if horizon <= 0:
        raise ValueError(f"`horizon` must be a positive integer. Received: horizon={horizon}")
    y_all = fill_gaps(history)
    start = _fit_rows(len(y_all), fit.season)
    y = y_all[start:]
    refit: EtsFit | None = None
    if len(y) >= MIN_FIT_ROWS and not is_constant(y) and float(fit.params["alpha"]) < 1:
        supported = _variants(len(y), fit.season)
        season = fit.season if (fit.trend, fit.season) in supported else None
        trend = fit.trend if (fit.trend, season) in supported else "none"
        if (trend, season) in supported:
            found = _try_variant(y, trend, season, start)
            refit = found[1] if found is not None else None
    if refit is None:
        refit = _flat(float(y[-1]), start)
    return ets_forecasts(y_all, refit, np.array([len(y_all) - 1]), horizon)[0]
