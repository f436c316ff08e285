"""Interval metrics (coverage, weighted quantile loss), empirical-residual intervals of the
baselines, conformal shifts, and the report's flag on a coverage far from nominal."""

from __future__ import annotations

import numpy as np
import pytest

from seqcast.modeling import intervals
from tasks.evaluate import _metrics_table

LEVELS = [0.1, 0.5, 0.9]


def test_coverage_and_weighted_quantile_loss_by_hand() -> None:
    # Two windows, one step, one target; quantiles [9, 10, 11] around both.
    quantiles = np.array([[[[9.0, 10.0, 11.0]]], [[[9.0, 10.0, 11.0]]]])
    actual = np.array([[[10.5]], [[12.0]]])  # inside, then above the 0.9 quantile
    metrics = intervals.quantile_metrics(quantiles, actual, LEVELS)
    assert metrics["coverage_80"] == 0.5
    # Pinball: q0.1: 0.1*1.5 + 0.1*3 = 0.45; q0.5: 0.5*0.5 + 0.5*2 = 1.25;
    # q0.9: 0.1*0.5 + 0.9*1 = 0.95. wQL = mean(2 * loss / 22.5).
    assert metrics["wql"] == pytest.approx(np.mean([0.45, 1.25, 0.95]) * 2 / 22.5)
    per_step = intervals.per_step_quantile_metrics(quantiles, actual, LEVELS)
    assert per_step == {"wql": [pytest.approx(metrics["wql"])], "coverage_80": [0.5]}


def test_central_intervals_pair_levels_that_add_up_to_one() -> None:
    pairs = intervals.central_intervals([0.05, 0.1, 0.5, 0.9, 0.95])
    assert [(i, j, round(n, 6)) for i, j, n in pairs] == [(0, 4, 0.9), (1, 3, 0.8)]
    assert intervals.central_intervals([0.5]) == []
    assert intervals.coverage_name(0.8) == "coverage_80"
    assert intervals.quantile_column("load", 0.1) == "load_q0.1"


def test_empirical_residual_intervals_cover_their_validation_share() -> None:
    rng = np.random.default_rng(0)
    forecast = np.zeros((5000, 2, 1))
    spread = np.array([1.0, 3.0])[None, :, None]  # step 2 is three times as uncertain
    actual = rng.normal(0, 1, forecast.shape) * spread
    offsets = intervals.residual_offsets(forecast, actual, LEVELS)
    assert offsets.shape == (3, 2, 1)
    np.testing.assert_allclose(offsets[2, :, 0], 1.2816 * spread[0, :, 0], rtol=0.06)
    fresh = rng.normal(0, 1, forecast.shape) * spread
    bands = intervals.with_offsets(forecast, offsets)
    assert intervals.quantile_metrics(bands, fresh, LEVELS)["coverage_80"] == pytest.approx(
        0.8, abs=0.02
    )
    with pytest.raises(ValueError, match="at least one validation window"):
        intervals.residual_offsets(forecast[:0], actual[:0], LEVELS)


def test_conformal_shifts_widen_a_too_narrow_head_to_nominal() -> None:
    rng = np.random.default_rng(1)
    actual = rng.normal(0, 1, (4000, 1, 1))
    narrow = np.broadcast_to(np.array([-0.3, 0.0, 0.3]), (4000, 1, 1, 3))  # ~24% coverage
    assert intervals.quantile_metrics(narrow, actual, LEVELS)["coverage_80"] < 0.3
    shifts = intervals.conformal_shifts(narrow[:2000], actual[:2000], LEVELS)
    calibrated = intervals.shifted(narrow[2000:], shifts)
    assert intervals.quantile_metrics(calibrated, actual[2000:], LEVELS)[
        "coverage_80"
    ] == pytest.approx(0.8, abs=0.03)
    assert (np.diff(calibrated, axis=-1) >= 0).all()


def test_a_coverage_far_from_nominal_is_flagged_in_words() -> None:
    assert intervals.coverage_flags({"mae": 1.0, "coverage_80": 0.78}) == []
    (flag,) = intervals.coverage_flags({"coverage_80": 0.6})
    assert "80% interval of model covered 60.0%" in flag and "too narrow" in flag
    assert "evaluate.calibrate" in flag
    assert "too wide" in intervals.coverage_flags({"coverage_80": 0.97})[0]
    (ets,) = intervals.coverage_flags({"coverage_80": 0.26}, "ets")
    assert ets.startswith("The 80% interval of ets covered 26.0%") and "validation residuals" in ets


def test_the_metrics_table_shows_a_dash_where_a_predictor_has_no_interval() -> None:
    table = _metrics_table(
        {"model": {"mae": 1.0, "coverage_80": 0.8}, "champion": {"mae": 2.0}}
    ).splitlines()
    assert table[0] == "| predictor | mae | coverage_80 |"
    assert table[3] == "| champion | 2.0000 | - |"


def test_a_statistical_kind_names_its_stored_offsets() -> None:
    assert intervals.predictor_of("network", {}) == "model"
    assert intervals.predictor_of("seasonal_naive", {"season": 7}) == "seasonal_naive_7"
    assert intervals.predictor_of("ets", {"season": 7, "fits": {}}) == "ets"
