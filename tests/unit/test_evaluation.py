"""Baselines and metrics on data whose answers can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from seqcast.modeling.evaluation import (
    confusion,
    evaluate_forecast,
    is_better,
    mase_scales,
    naive_forecasts,
    per_class_metrics,
)
from seqcast.windows.scaling import Scaler, Stats
from seqcast.windows.windowing import WindowArrays, WindowLayout
from tests.conftest import forecast_layout


def layout(lookback: int = 6, horizon: int = 3) -> WindowLayout:
    return forecast_layout(lookback, horizon)


def test_last_value_and_seasonal_naive() -> None:
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1)  # inputs 0..5
    windows = WindowArrays(
        x=x, y=np.zeros((1, 3, 1), np.float32), series=np.array(["a"], object), origin=np.array([0])
    )
    forecasts = naive_forecasts(windows, layout(), season=2)
    assert forecasts["last_value"][0, :, 0].tolist() == [5, 5, 5]
    # target steps 6, 7, 8 take the values one season (2 steps) earlier: 4, 5, 4
    assert forecasts["seasonal_naive_2"][0, :, 0].tolist() == [4, 5, 4]


def test_metrics_are_in_original_units() -> None:
    scaler = Scaler(
        kind="series",
        columns=["y"],
        global_stats=Stats([0.0], [1.0]),
        series_stats={"a": Stats([100.0], [10.0])},
    )
    x = np.zeros((1, 6, 1), np.float32)  # all inputs at the mean: 100 in original units
    y = np.ones((1, 3, 1), np.float32)  # targets one std above: 110
    windows = WindowArrays(x=x, y=y, series=np.array(["a"], object), origin=np.array([0]))
    mase_scale = np.full((1, 1, 1), 2.0)  # in-sample naive MAE of 2 units
    report = evaluate_forecast(y + 0.5, windows, layout(), scaler, None, mase_scale)
    scored = {s.name: s.metrics for s in report.scored}
    assert scored["model"]["mae"] == 5.0  # predicted 115 vs actual 110
    assert scored["last_value"]["mae"] == 10.0  # predicted 100 vs actual 110
    assert scored["model"]["mase"] == 2.5
    assert scored["model"]["smape"] == pytest.approx(100 * 2 * 5 / 225)
    assert report.per_step_mae["model"] == [5.0, 5.0, 5.0]
    assert report.per_series_mae == {"a": {"model": 5.0, "last_value": 10.0}}


def test_mase_scale_when_the_season_fills_the_input_window() -> None:
    scaler = Scaler(kind="none", columns=["y"], global_stats=Stats([0.0], [1.0]))
    x = np.array([0, 2, 4, 6, 8, 10], np.float32).reshape(1, 6, 1)  # steps of 2
    windows = WindowArrays(x=x, y=np.zeros((1, 3, 1)), series=np.array(["a"], object), origin=[0])
    assert mase_scales(windows, layout(), scaler, season=3)[0, 0, 0] == 6.0  # lag 3
    # season == lookback: no pair one season apart in the window, so lag 1 (was NaN)
    assert mase_scales(windows, layout(), scaler, season=6)[0, 0, 0] == 2.0


def test_confusion_and_per_class_metrics() -> None:
    actual = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0])
    matrix = confusion(predicted, actual, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    per_class = per_class_metrics(matrix, ["a", "b", "c"])
    assert per_class["b"] == {"precision": 2 / 3, "recall": 1.0, "support": 2}
    assert per_class["c"]["precision"] == 0.0 and per_class["c"]["recall"] == 0.0


def test_nan_never_wins_and_margin_applies() -> None:
    assert not is_better(float("nan"), 1.0, "mae")
    assert is_better(1.0, float("nan"), "mae")
    assert is_better(0.9, 1.0, "mae")
    assert not is_better(0.95, 1.0, "mae", margin=0.1)
    assert is_better(0.8, 0.7, "macro_f1") and not is_better(0.7, 0.7, "macro_f1")


def test_mase_of_a_constant_target_is_undefined_and_the_table_stays_aligned() -> None:
    # Issue 13 #16: a constant history has a zero naive error; MASE was error / 1e-12 (~4e10),
    # whose 16-character cell pushed the CLI table's columns out of line.
    from flows.cli.main import format_metrics

    scaler = Scaler(kind="none", columns=["y"], global_stats=Stats([0.0], [1.0]))
    x = np.full((2, 6, 1), 7.0, np.float32)  # series "a": constant 7
    x[1, :, 0] = [0, 2, 4, 6, 8, 10]  # series "b": steps of 2
    y = np.full((2, 3, 1), 7.0, np.float32)
    series = np.array(["a", "b"], object)
    windows = WindowArrays(x=x, y=y, series=series, origin=np.array([0, 1]))
    scale = mase_scales(windows, layout(), scaler, season=None)
    assert np.isnan(scale[0, 0, 0]) and scale[1, 0, 0] == 2.0
    report = evaluate_forecast(y + 0.04, windows, layout(), scaler, None, scale)
    scores = {s.name: s.metrics for s in report.scored}
    assert scores["model"]["mase"] == pytest.approx(0.02)  # series "b" only: 0.04 / 2

    only_constant = WindowArrays(x=x[:1], y=y[:1], series=series[:1], origin=np.array([0]))
    scale = mase_scales(only_constant, layout(), scaler, season=None)
    constant = evaluate_forecast(y[:1] + 0.04, only_constant, layout(), scaler, None, scale)
    scores = {s.name: s.metrics for s in constant.scored}
    assert np.isnan(scores["model"]["mase"])
    scores["last_value"]["mae"] = 4.2e10  # a huge finite value must not widen its cell
    table = format_metrics(scores, "mae").splitlines()
    assert len({len(line) for line in table[:-1]}) == 1, table
    assert table[1].split()[-1] == "n/a"
