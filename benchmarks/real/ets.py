"""The ETS peer: statsmodels Holt-Winters, additive damped trend (+ additive season).

Fit once per series and target on the rows before the test part (train and validation:
ETS needs no validation set, so it gets every row seqcast's model could learn from), then
forecast from every test origin with the fitted parameters and initial states held fixed:
the filter runs over the rows up to the origin, nothing is re-estimated on test data.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.real.windows import Panel
from seqcast.windows.windowing import split_bounds

SMOOTHING = ["smoothing_level", "smoothing_trend", "smoothing_seasonal", "damping_trend"]


def _model(y: np.ndarray, season: int | None, known: dict[str, object] | None) -> Any:
    """Holt-Winters on ``y``; ``known``: the fitted parameters whose initial states to reuse."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]

    seasonal = "add" if season else None
    init: dict[str, object] = {"initialization_method": "estimated"}
    if known is not None:
        init = {
            "initialization_method": "known",
            "initial_level": known["initial_level"],
            "initial_trend": known["initial_trend"],
        }
        if seasonal:
            init["initial_seasonal"] = known["initial_seasons"]
    return ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal=seasonal,
        seasonal_periods=season if seasonal else None,
        **init,
    )


def ets_forecasts(
    panel: Panel, rows: pd.DataFrame, season: int | None, val: float, test: float
) -> np.ndarray:
    """Each row's ETS forecast (rows: series, origin, step, target), in original units."""
    out = np.full(len(rows), np.nan)
    for s in panel.series:
        _, test_start = split_bounds(len(s.values), val, test)
        for j, target in enumerate(panel.targets):
            mine = (rows["series"] == s.name) & (rows["target"] == target)
            if not mine.any():
                continue
            y = s.values[:, j]
            # a season needs two full cycles of fitting rows to estimate its initial states
            usable = season if season and test_start >= 2 * season else None
            with warnings.catch_warnings():  # convergence chatter on short series
                warnings.simplefilter("ignore")
                fitted = _model(y[:test_start], usable, None).fit()
                params = dict(fitted.params)
                fixed = {k: params[k] for k in SMOOTHING if params.get(k) is not None}
                for origin in sorted(set(rows.loc[mine, "origin"])):
                    at = mine & (rows["origin"] == origin)
                    path = _model(y[: origin + 1], usable, params).fit(optimized=False, **fixed)
                    ahead = np.asarray(path.forecast(int(rows.loc[at, "step"].max())))
                    out[at.to_numpy()] = ahead[rows.loc[at, "step"].to_numpy() - 1]
    return out
