"""Evaluation streamed block by block (issue 18) scores exactly what one pass over arrays of
the whole test split scores: metrics, per-step and per-series MAE, intervals, the forecast
table and the worst series' examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.data.sample import load_series
from seqcast.io import storage
from seqcast.modeling import evaluation, intervals, scoring
from seqcast.modeling.challengers import challenger_forecasts, fit_challengers
from seqcast.windows import store as window_store
from seqcast.windows.windowing import WindowArrays
from tests.unit.test_challengers import build

LEVELS = [0.1, 0.5, 0.9]
SEASON = 6
RELATIVE = 1e-6
"""The arrays are float32: one pass took float32 means, the blocks sum in float64."""


def network(windows: WindowArrays) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in network: deterministic per window, with a quantile head."""
    point = windows.x[:, -3:, :1].mean(axis=1, keepdims=True) + 0.05 * np.arange(4)[:, None]
    point = np.asarray(point, np.float32)
    return point, point[..., None] + np.array([-0.5, 0.0, 0.4], np.float32)


def test_block_by_block_scores_equal_one_pass_over_the_whole_split(tmp_path: Path) -> None:
    frame = load_series(n_series=7, n_steps=24 * 10, seed=11)
    uri = build(tmp_path, frame, "s")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    reader = window_store.StoreReader(uri)
    blocks_with_test = sum(bool(reader.count("test", k)) for k in range(reader.n_blocks))
    assert blocks_with_test > 2  # the point: several blocks, each scored alone
    fits = fit_challengers(uri, layout, scaler, SEASON)

    # One pass over the whole split, as evaluate did before: every array materialised.
    test = window_store.read_split(uri, "test", layout)
    val = window_store.read_split(uri, "val", layout)
    point, head = network(test)
    naive = challenger_forecasts(uri, "test", layout, scaler, SEASON, fits)
    scale = evaluation.mase_scales(test, layout, scaler, SEASON)
    report = evaluation.evaluate_forecast(point, test, layout, scaler, SEASON, scale, naive)
    actual = report.actual
    assert actual is not None
    champion = evaluation.to_original_units(naive["ets"], test.series, scaler, ["load"])
    val_naive = challenger_forecasts(uri, "val", layout, scaler, SEASON, fits)
    offsets = {n: intervals.residual_offsets(f, val.y, LEVELS) for n, f in val_naive.items()}
    shifts = intervals.conformal_shifts(network(val)[1], val.y, LEVELS)
    bands = {"model": intervals.shifted(head, shifts)} | {
        n: intervals.with_offsets(f, offsets[n]) for n, f in naive.items()
    }
    expected_intervals = {}
    for name, band in bands.items():
        original = np.stack(
            [
                evaluation.to_original_units(band[..., k], test.series, scaler, ["load"])
                for k in range(3)
            ],
            axis=-1,
        )
        expected_intervals[name] = (
            intervals.quantile_metrics(original, actual, LEVELS),
            intervals.per_step_quantile_metrics(original, actual, LEVELS),
        )

    # Streamed: the validation sample (all windows: under the cap), then the test blocks.
    sample = scoring.validation_sample(uri, layout, scaler, [SEASON], fits, network)
    assert sample.of == len(val) == len(sample.y)
    assert sample.quantiles is not None
    np.testing.assert_array_equal(sample.y, val.y)
    np.testing.assert_allclose(
        intervals.conformal_shifts(sample.quantiles, sample.y, LEVELS), shifts
    )
    streamed_offsets = {
        n: intervals.residual_offsets(f, sample.y, LEVELS) for n, f in sample.challengers.items()
    }
    forecasts_uri = str(tmp_path / "test_forecasts.parquet")
    scores = scoring.score_test(
        uri,
        layout,
        scaler,
        SEASON,
        fits,
        network,
        forecasts_uri,
        champion=lambda windows, challengers: evaluation.to_original_units(
            challengers["ets"], windows.series, scaler, ["load"]
        ),
        bands=scoring.Bands(LEVELS, streamed_offsets, head=True, shifts=shifts),
    )

    assert scores.windows == len(test)
    expected = {s.name: s.metrics for s in report.scored}
    expected["champion"] = evaluation.forecast_metrics(champion, actual, scale)
    assert list(scores.scores) == [
        "model",
        "last_value",
        "seasonal_naive_6",
        "ets",
        "ar",
        "champion",
    ]
    for name, metrics in expected.items():
        point_metrics = {k: scores.scores[name][k] for k in metrics}
        assert point_metrics == pytest.approx(metrics, rel=RELATIVE), name
    for name, (overall, per_step) in expected_intervals.items():
        assert {k: scores.scores[name][k] for k in overall} == pytest.approx(overall, rel=RELATIVE)
        for metric, values in per_step.items():
            assert scores.interval_per_step[name][metric] == pytest.approx(values, rel=RELATIVE)
    for name, values in report.per_step_mae.items():
        assert scores.per_step_mae[name] == pytest.approx(values, rel=RELATIVE)
    assert list(scores.per_series_mae) == list(report.per_series_mae)  # sorted alike
    for series, values in report.per_series_mae.items():
        assert scores.per_series_mae[series] == pytest.approx(values, rel=RELATIVE)
    assert scores.worst_series() == report.worst_series()

    # The forecast table: every row, in the whole split's order, written in row groups.
    table = evaluation.forecast_table(
        test, {**report.forecasts, "champion": champion}, actual, ["load"]
    )
    written = storage.read_parquet(forecasts_uri).to_pandas()
    pd.testing.assert_frame_equal(written, table, check_dtype=False)

    # The plot's examples: the worst series' last test windows, read again from their blocks.
    assert [e.series for e in scores.examples] == report.worst_series()[:3]
    first = scores.examples[0]
    last = int(np.flatnonzero(test.series == first.series)[-1])
    history = evaluation.to_original_units(
        test.x[last : last + 1, :, :1], test.series[last : last + 1], scaler, ["load"]
    )
    np.testing.assert_allclose(first.history, history[0, :, 0])
    assert first.band is not None
    np.testing.assert_allclose(first.predicted, report.forecasts["model"][last, :, 0])


def test_a_large_validation_split_is_sampled_evenly_and_bounded(tmp_path: Path) -> None:
    frame = load_series(n_series=5, n_steps=24 * 8, seed=2)
    uri = build(tmp_path, frame, "v")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    fits = fit_challengers(uri, layout, scaler, SEASON)
    val = window_store.read_split(uri, "val", layout)
    everything = challenger_forecasts(uri, "val", layout, scaler, SEASON, fits)
    cap = len(val) // 3
    sample = scoring.validation_sample(uri, layout, scaler, [SEASON], fits, cap=cap)
    every = -(-len(val) // cap)
    assert every > 1 and sample.of == len(val)
    np.testing.assert_array_equal(sample.y, val.y[::every])
    assert len(sample.y) <= cap
    for name, values in everything.items():
        np.testing.assert_array_equal(sample.challengers[name], values[::every])
    assert sample.quantiles is None  # no network asked for
