"""AR challenger: order by AIC, statsmodels' forecast at the last origin, fixed coefficients."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from statsmodels.tsa.ar_model import AutoReg

from seqcast.modeling.autoregressive import (
    LAST_VALUE_FIT,
    ArFit,
    aicc_by_order,
    ar_forecasts,
    fit_ar,
    forecast_latest,
    max_order,
)


def quasi_cycle(n: int, seed: int = 0) -> np.ndarray:
    """An AR(2) with complex roots: a noisy cycle of about 11 steps whose phase drifts, the
    sunspot-like case no fixed season describes. y = 50 + 1.6 y1 - 0.9 y2 + noise."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n + 100)
    for t in range(2, len(y)):
        y[t] = 1.6 * y[t - 1] - 0.9 * y[t - 2] + rng.normal(0, 1.0)
    return 50 + y[100:]


def test_the_order_and_coefficients_of_an_ar2_are_recovered() -> None:
    fit = fit_ar(quasi_cycle(600))
    assert 2 <= fit.order <= 6  # AIC may add a lag or two, never drop the real ones
    assert fit.coefficients[0] == pytest.approx(1.6, abs=0.1)
    assert fit.coefficients[1] == pytest.approx(-0.9, abs=0.15)


def test_order_criteria_and_coefficients_are_statsmodels_autoreg() -> None:
    values = quasi_cycle(250, seed=5)
    top = max_order(len(values))
    theirs = [AutoReg(values, lags=p, trend="c", hold_back=top).fit().aicc for p in range(top + 1)]
    np.testing.assert_allclose(aicc_by_order(values, top), theirs, rtol=1e-9)
    fit = fit_ar(values)
    assert fit.order == int(np.argmin(theirs))
    params = AutoReg(values, lags=fit.order, trend="c").fit().params
    np.testing.assert_allclose([fit.intercept, *fit.coefficients], params, rtol=1e-9)


def test_last_origin_matches_statsmodels_forecast() -> None:
    values = quasi_cycle(300)
    train = values[:240]
    fit = fit_ar(train)
    ours = ar_forecasts(values, fit, np.array([239]), 12)
    theirs = AutoReg(train, lags=fit.order, trend="c").fit().forecast(12)
    np.testing.assert_allclose(ours[0], theirs, rtol=1e-9)


def test_each_origin_reads_only_the_values_up_to_it() -> None:
    values = quasi_cycle(200)
    fit = fit_ar(values[:150])
    origins = np.array([150, 170, 190])
    before = ar_forecasts(values, fit, origins, 5)
    changed = values.copy()
    changed[171:] += 100.0  # after the second origin
    after = ar_forecasts(changed, fit, origins, 5)
    np.testing.assert_array_equal(before[:2], after[:2])
    assert not np.allclose(before[2], after[2])


def test_forecasts_follow_the_ar_recursion_by_hand() -> None:
    fit = ArFit(intercept=1.0, coefficients=[0.5, 0.25])
    values = np.arange(10, dtype=np.float64)  # 0..9
    out = ar_forecasts(values, fit, np.array([9, 1, 0]), 2)
    first = 1 + 0.5 * 9 + 0.25 * 8  # 7.5
    np.testing.assert_allclose(out[0], [first, 1 + 0.5 * first + 0.25 * 9])
    np.testing.assert_allclose(out[1, 0], 1 + 0.5 * 1 + 0.25 * 0)
    # origin 0 has no value before it: the series' first value stands in
    np.testing.assert_allclose(out[2, 0], 1 + 0.5 * 0 + 0.25 * 0)


def test_a_cycle_is_forecast_far_better_than_by_its_last_value() -> None:
    values = quasi_cycle(400, seed=3)
    fit = fit_ar(values[:300])
    origins = np.arange(299, 395)
    actual = np.stack([values[o + 1 : o + 6] for o in origins])
    ar = np.abs(ar_forecasts(values, fit, origins, 5) - actual).mean()
    last = np.abs(values[origins][:, None] - actual).mean()
    assert ar < 0.6 * last, (ar, last)


def test_short_and_constant_series_forecast_their_last_value() -> None:
    assert fit_ar(np.arange(5, dtype=np.float64)) == LAST_VALUE_FIT
    assert fit_ar(np.full(50, 3.0)) == LAST_VALUE_FIT
    np.testing.assert_array_equal(
        forecast_latest(np.array([1.0, 4.0]), LAST_VALUE_FIT, 3), [4.0] * 3
    )


def test_gaps_are_interpolated() -> None:
    values = quasi_cycle(120)
    holed = values.copy()
    holed[[30, 31, 80]] = np.nan
    fit = fit_ar(holed)
    assert all(np.isfinite(fit.coefficients)) and np.isfinite(fit.intercept)
    assert np.isfinite(ar_forecasts(holed, fit, np.array([31, 119]), 4)).all()


def test_order_is_capped_as_r_caps_it() -> None:
    assert max_order(100) == 20  # 10 log10(n)
    assert max_order(30) == 9  # a third of the values
    assert max_order(10**6) == 48  # ORDER_CAP
    assert max_order(1) == 0


def test_json_round_trip_and_bad_arguments() -> None:
    fit = fit_ar(quasi_cycle(100))
    assert ArFit.from_json(json.loads(json.dumps(fit.to_json()))) == fit
    with pytest.raises(ValueError, match="horizon"):
        ar_forecasts(np.arange(5.0), fit, np.array([4]), 0)
    with pytest.raises(ValueError, match="origins"):
        ar_forecasts(np.arange(5.0), fit, np.array([5]), 1)


def test_an_explosive_fit_forecasts_without_warnings() -> None:
    fit = ArFit(intercept=0.0, coefficients=[1e10])  # far outside any sane fit: overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ar_forecasts(np.array([1.0, 2.0]), fit, np.array([1]), 40)
    assert np.isinf(out[0, -1])
