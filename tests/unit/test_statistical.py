"""ETS challenger: fitting, fixed-parameter filtering and the closed-form forecasts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from seqcast.modeling.statistical import EtsFit, ets_forecasts, fit_ets, forecast_latest

SEASON = 24


def seasonal_series(n: int, noise: float = 0.3, seed: int = 0) -> np.ndarray:
    """Hourly-like values: level 10, a daily sine of amplitude 3, Gaussian noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 10 + 3 * np.sin(2 * np.pi * t / SEASON) + rng.normal(0, noise, n)


def statsmodels_forecast(train: np.ndarray, fit: EtsFit, horizon: int) -> np.ndarray:
    """statsmodels' own forecast of the same model: ``fit``'s parameters and initial states."""
    start = int(fit.params["start"])
    model = ETSModel(
        train[start:],
        error="add",
        trend=None if fit.trend == "none" else "add",
        damped_trend=fit.trend == "damped",
        seasonal="add" if fit.season else None,
        seasonal_periods=fit.season,
        initialization_method="known",
        initial_level=fit.params["initial_level"],
        initial_trend=fit.params["initial_trend"] if fit.trend != "none" else None,
        initial_seasonal=np.asarray(fit.initial_seasonal) if fit.season else None,
    )
    names = {
        "smoothing_level": "alpha",
        "smoothing_trend": "beta",
        "smoothing_seasonal": "gamma",
        "damping_trend": "phi",
    }
    params = [fit.params[names[name]] for name in model.param_names]
    return np.asarray(model.smooth(params).forecast(horizon))


def test_last_origin_matches_statsmodels_forecast() -> None:
    values = seasonal_series(300)
    train = values[:240]
    fit = fit_ets(train, SEASON)
    assert fit.season == SEASON and len(fit.initial_seasonal) == SEASON
    ours = ets_forecasts(values, fit, np.array([239]), 30)
    assert ours.shape == (1, 30)
    np.testing.assert_allclose(ours[0], statsmodels_forecast(train, fit, 30), rtol=1e-9)


def test_a_trend_that_flattens_gets_a_damped_trend_as_statsmodels_forecasts_it() -> None:
    t = np.arange(300, dtype=float)
    values = 100 * (1 - np.exp(-t / 80)) + np.random.default_rng(1).normal(0, 0.5, len(t))
    fit = fit_ets(values, None)
    assert (fit.trend, fit.season) == ("damped", None)
    assert 0.8 <= fit.params["phi"] < 1
    np.testing.assert_allclose(
        ets_forecasts(values, fit, np.array([299]), 12)[0],
        statsmodels_forecast(values, fit, 12),
        rtol=1e-9,
    )


def test_ets_beats_seasonal_naive_and_last_value_on_a_smooth_seasonal_series() -> None:
    values = seasonal_series(20 * SEASON + 200, noise=0.5)
    n_train, horizon = 20 * SEASON, SEASON
    fit = fit_ets(values[:n_train], SEASON)
    origins = np.arange(n_train - 1, len(values) - horizon, 7)
    ahead = origins[:, None] + 1 + np.arange(horizon)[None, :]
    actual = values[ahead]
    ets = ets_forecasts(values, fit, origins, horizon)
    last = np.repeat(values[origins][:, None], horizon, axis=1)
    seasonal = values[ahead - SEASON]
    mae = {
        name: np.abs(f - actual).mean()
        for name, f in (("ets", ets), ("last", last), ("snaive", seasonal))
    }
    assert mae["ets"] < 0.8 * mae["snaive"], mae
    assert mae["ets"] < 0.5 * mae["last"], mae


def test_a_linear_trend_gets_a_trend() -> None:
    t = np.arange(150, dtype=float)
    values = 5 + 0.8 * t + np.random.default_rng(2).normal(0, 0.5, len(t))
    fit = fit_ets(values[:120], None)
    assert fit.trend in ("add", "damped")
    forecast = ets_forecasts(values, fit, np.array([119]), 30)[0]
    assert np.abs(forecast - values[120:]).mean() < 4.0  # last value would miss by ~12


def test_forecasts_use_only_values_up_to_each_origin() -> None:
    values = seasonal_series(400)
    fit = fit_ets(values[:300], SEASON)
    changed = values.copy()
    changed[351:] += 100.0
    origins = np.array([299, 320, 350])
    np.testing.assert_array_equal(
        ets_forecasts(values, fit, origins, 10), ets_forecasts(changed, fit, origins, 10)
    )
    # Later observations do move the state: the forecast at 350 is not the one at 299.
    at_299 = ets_forecasts(values, fit, np.array([299]), 60)[0]
    at_350 = ets_forecasts(values, fit, np.array([350]), 9)[0]
    assert not np.allclose(at_299[51:60], at_350)
    np.testing.assert_array_equal(
        ets_forecasts(values[:300], fit, np.array([299]), 10),
        ets_forecasts(values, fit, np.array([299]), 10),
    )


def test_constant_series_gives_a_flat_forecast() -> None:
    for season in (None, SEASON):
        values = np.full(100, 7.5)
        fit = fit_ets(values, season)
        np.testing.assert_allclose(ets_forecasts(values, fit, np.array([50, 99]), 5), 7.5)
        np.testing.assert_allclose(forecast_latest(values, fit, 5), 7.5)


def test_short_series_fall_back_to_simpler_variants() -> None:
    tiny = np.array([1.0, 2.0, 4.0])
    fit = fit_ets(tiny, SEASON)
    assert (fit.trend, fit.season) == ("none", None)
    np.testing.assert_allclose(ets_forecasts(tiny, fit, np.array([2]), 3)[0], 4.0)
    one_season = seasonal_series(30)  # too short for a season of 24
    fit = fit_ets(one_season, SEASON)
    assert fit.season is None
    assert np.isfinite(ets_forecasts(one_season, fit, np.array([29]), 6)).all()


def test_nan_gaps_are_interpolated() -> None:
    values = seasonal_series(300)
    gappy = values.copy()
    gappy[100:105] = np.nan
    gappy[250] = np.nan
    fit = fit_ets(gappy[:240], SEASON)
    forecast = ets_forecasts(gappy, fit, np.array([200, 249, 260]), 12)
    assert np.isfinite(forecast).all()
    assert np.abs(forecast[2] - values[261:273]).mean() < 1.0
    with pytest.raises(ValueError, match="observed value"):
        fit_ets(np.full(20, np.nan), None)


def test_long_series_fit_a_recent_stretch_and_still_forecast_early_origins() -> None:
    values = seasonal_series(1500)
    fit = fit_ets(values, SEASON)
    start = int(fit.params["start"])
    assert start > 0 and start % SEASON == 0 and len(values) - start <= 1000
    forecast = ets_forecasts(values, fit, np.array([3, 30, start - 1, start + 10, 1499]), 6)
    assert np.isfinite(forecast).all()
    np.testing.assert_allclose(forecast[-1], statsmodels_forecast(values, fit, 6), rtol=1e-9)


def test_fit_is_deterministic_and_round_trips_through_json() -> None:
    values = seasonal_series(200)
    fit = fit_ets(values, SEASON)
    assert fit_ets(values, SEASON) == fit
    restored = EtsFit.from_json(json.loads(json.dumps(fit.to_json())))
    assert restored == fit
    with pytest.raises(ValueError, match="trend"):
        EtsFit.from_json({**fit.to_json(), "trend": "mul"})


def test_forecast_latest_refits_the_variant_on_recent_history() -> None:
    values = seasonal_series(700)
    fit = fit_ets(values[:500], SEASON)
    forecast = forecast_latest(values[400:676], fit, SEASON)
    assert forecast.shape == (SEASON,)
    actual = values[676:700]
    assert np.abs(forecast - actual).mean() < 0.5 * np.abs(values[675] - actual).mean()
    short = forecast_latest(values[-30:], fit, 6)  # under two seasons: refit without one
    assert short.shape == (6,) and np.isfinite(short).all()
    with pytest.raises(ValueError, match="horizon"):
        forecast_latest(values, fit, 0)
