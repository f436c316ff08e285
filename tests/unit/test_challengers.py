"""Statistical challengers read from a window store: aligned with read_split, scaled alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.config import PipelineConfig
from seqcast.data.sample import load_series
from seqcast.io import storage
from seqcast.modeling.challenger_parts import block_groups, fit_part, merge_parts
from seqcast.modeling.challengers import (
    ChallengerFits,
    challenger_forecasts,
    effective_season,
    fit_challenger_blocks,
    fit_challengers,
)
from seqcast.modeling.evaluation import naive_forecasts, to_original_units
from seqcast.windows import store as window_store
from seqcast.windows.step import build_or_reuse
from tests.conftest import forecast_layout, tiny_config

LOOKBACK, HORIZON = 12, 4


def build(tmp_path: Path, frame: pd.DataFrame, tag: str, **overrides: object) -> str:
    """A window store of ``frame`` (hourly load per sensor), in blocks of a few series."""
    uri = str(tmp_path / f"validated-{tag}.parquet")
    storage.write_frame(frame.sort_values(["sensor", "ts"], kind="stable"), uri)
    config: PipelineConfig = tiny_config(
        tmp_path,
        tmp_path / f"root-{tag}",
        window__lookback=LOOKBACK,
        window__horizon=HORIZON,
        **overrides,
    )
    return build_or_reuse(config, uri, f"fp-{tag}", "sensor", block_rows=400).uri


def test_forecasts_align_with_read_split_and_match_the_naive_baselines(tmp_path: Path) -> None:
    frame = load_series(n_series=3, n_steps=24 * 12, seed=3)
    uri = build(tmp_path, frame, "a")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    assert len(window_store.read_manifest(uri)["blocks"]) > 1  # several blocks, in order
    fits = fit_challengers(uri, layout, scaler, 6)
    assert sorted(fits.ets) == sorted(fits.ar) == sorted(frame["sensor"].unique())
    n_blocks = len(window_store.read_manifest(uri)["blocks"])
    shards = [fit_challenger_blocks(uri, layout, scaler, 6, range(i, n_blocks, 2)) for i in (0, 1)]
    assert {**shards[0].ets, **shards[1].ets} == fits.ets and not set(shards[0].ets) & set(
        shards[1].ets
    )
    assert {**shards[0].ar, **shards[1].ar} == fits.ar
    for split in ("val", "test"):
        windows = window_store.read_split(uri, split, layout)
        ours = challenger_forecasts(uri, split, layout, scaler, 6, fits)
        naive = naive_forecasts(windows, layout, 6)
        assert set(ours) == {"last_value", "seasonal_naive_6", "ets", "ar"}
        for name in ("last_value", "seasonal_naive_6"):
            np.testing.assert_array_equal(ours[name], naive[name])
        for name in ("ets", "ar"):
            assert ours[name].shape == windows.y.shape
            assert np.isfinite(ours[name]).all()


def test_ets_beats_last_value_on_daily_load(tmp_path: Path) -> None:
    frame = load_series(n_series=2, n_steps=24 * 12, seed=4)
    uri = build(tmp_path, frame, "b")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    fits = fit_challengers(uri, layout, scaler, 24)
    windows = window_store.read_split(uri, "test", layout)
    ours = challenger_forecasts(uri, "test", layout, scaler, 24, fits)
    actual = to_original_units(windows.y, windows.series, scaler, layout.target_columns)
    mae = {
        name: np.abs(
            to_original_units(f, windows.series, scaler, layout.target_columns) - actual
        ).mean()
        for name, f in ours.items()
    }
    assert mae["ets"] < 0.7 * mae["last_value"], mae


def test_seasonal_naive_reads_history_beyond_the_lookback(tmp_path: Path) -> None:
    frame = load_series(n_series=2, n_steps=24 * 10, seed=5)
    # A gap in one series' test part: windows after it read history from before it, so
    # grid steps (not row numbers) must count the season; a value read from inside the
    # gap is interpolated.
    gap = (frame["sensor"] == "sensor-1") & frame.index.isin(range(200, 204))
    frame = frame[~gap].reset_index(drop=True)
    uri = build(tmp_path, frame, "c")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    season = 2 * LOOKBACK + 5  # longer than the input window
    fits = fit_challengers(uri, layout, scaler, season)
    windows = window_store.read_split(uri, "test", layout)
    forecast = challenger_forecasts(uri, "test", layout, scaler, season, fits)
    snaive = forecast[f"seasonal_naive_{season}"]
    hourly = {
        name: rows.set_index("ts")["load"].asfreq("h").interpolate()
        for name, rows in frame.groupby("sensor")
    }
    after_gap = windows.origin > np.datetime64(
        frame["ts"].iloc[0].tz_localize(None) + pd.Timedelta(hours=204)
    )
    assert (after_gap & (windows.series == "sensor-1")).any()
    step = pd.Timedelta(hours=1)
    for i in range(len(windows)):
        series, origin = windows.series[i], pd.Timestamp(windows.origin[i], tz="UTC")
        for h in range(HORIZON):
            source = origin + (h + 1) * step - season * step
            expected = scaler.transform(np.array([[hourly[series][source], 0.0]]), series)[0, 0]
            assert snaive[i, h, 0] == pytest.approx(expected, abs=1e-5)


def test_fits_merged_from_parts_are_the_serial_document_byte_for_byte(tmp_path: Path) -> None:
    frame = load_series(n_series=5, n_steps=24 * 9, seed=8)
    uri = build(tmp_path, frame, "parts")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    n_blocks = len(window_store.read_manifest(uri)["blocks"])
    assert n_blocks == 3  # two series, two, one (block_rows=400, 216 rows each)
    fits = fit_challengers(uri, layout, scaler, 24)
    # What the one serial fit-challengers task wrote before the fit was mapped.
    serial = {
        "season": 24,
        "fits": {s: {c: f.to_json() for c, f in by.items()} for s, by in fits.ets.items()},
        "ar_fits": {s: {c: f.to_json() for c, f in by.items()} for s, by in fits.ar.items()},
    }
    for per_group in (1, 2, 3):
        groups = block_groups(n_blocks, per_group)
        assert [b for g in groups for b in g] == list(range(n_blocks))
        parts = [
            str(tmp_path / f"by-{per_group}" / f"part-{i:05d}.json") for i in range(len(groups))
        ]
        series = [
            fit_part(uri, layout, scaler, 24, g, p)[0] for g, p in zip(groups, parts, strict=True)
        ]
        assert sum(series) == 5
        merged = merge_parts(parts[::-1], 24)  # any order: merged by first block
        assert storage.json_bytes(merged) == storage.json_bytes(serial)
    with pytest.raises(ValueError, match="season"):
        merge_parts(parts, 12)
    with pytest.raises(ValueError, match="repeats series"):
        merge_parts([*parts, parts[0]], 24)


def test_fits_use_training_rows_only(tmp_path: Path) -> None:
    frame = load_series(n_series=2, n_steps=24 * 10, seed=6)
    changed = frame.copy()
    late = changed.groupby("sensor").cumcount() >= 24 * 9  # inside every series' test part
    changed.loc[late, "load"] += 500.0
    fits = []
    for tag, data in (("d", frame), ("e", changed)):
        uri = build(tmp_path, data, tag)
        layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
        fits.append(fit_challengers(uri, layout, scaler, 24))
    assert fits[0] == fits[1]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    frame = load_series(n_series=2, n_steps=24 * 6, seed=7)
    uri = build(tmp_path, frame, "f")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    with pytest.raises(ValueError, match="split"):
        challenger_forecasts(uri, "holdout", layout, scaler, None, ChallengerFits())
    with pytest.raises(KeyError, match="fit_challengers"):
        challenger_forecasts(uri, "test", layout, scaler, None, ChallengerFits(ets={}))
    with pytest.raises(ValueError, match="kinds"):
        fit_challengers(uri, layout, scaler, None, ["arima"])


def test_only_the_configured_challengers_are_fitted_and_forecast(tmp_path: Path) -> None:
    frame = load_series(n_series=2, n_steps=24 * 8, seed=9)
    uri = build(tmp_path, frame, "kinds")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    both = fit_challengers(uri, layout, scaler, 24)
    only_ar = fit_challengers(uri, layout, scaler, 24, ["ar"])
    assert both.kinds == ["ets", "ar"] and only_ar.kinds == ["ar"] and only_ar.ets is None
    assert only_ar.ar == both.ar
    out = challenger_forecasts(uri, "test", layout, scaler, 24, only_ar)
    assert list(out) == ["last_value", "seasonal_naive_24", "ar"]
    np.testing.assert_array_equal(
        out["ar"], challenger_forecasts(uri, "test", layout, scaler, 24, both)["ar"]
    )
    # A part fitted for AR alone cannot be merged into a plan that wants ETS too.
    n_blocks = len(window_store.read_manifest(uri)["blocks"])
    part = str(tmp_path / "ar-only" / "part-00000.json")
    fit_part(uri, layout, scaler, 24, list(range(n_blocks)), part, ["ar"])
    assert set(merge_parts([part], 24, ["ar"])) == {"season", "ar_fits"}
    with pytest.raises(ValueError, match="'fits'"):
        merge_parts([part], 24)


def test_a_config_without_a_season_takes_the_one_its_frequency_implies() -> None:
    layout = forecast_layout(lookback=6, horizon=2)
    monthly = dataclasses.replace(layout, frequency="MS")
    assert effective_season(None, monthly) == 12
    assert effective_season(None, dataclasses.replace(layout, frequency="1h")) == 24
    assert effective_season(None, dataclasses.replace(layout, frequency="YS")) is None
    assert effective_season(3, monthly) == 3  # the configured season always wins
    assert effective_season(0, monthly) is None  # 0: no season, said explicitly


def test_seasonal_naive_on_a_monthly_grid_reads_the_same_month_a_year_before(
    tmp_path: Path,
) -> None:
    """Months are 28-31 days: positions come from the calendar, not a mean step duration
    (which once put months on the wrong grid steps and interpolated made-up gaps)."""
    stamps = pd.date_range("2015-01-01", periods=72, freq="MS", tz="UTC")
    frame = pd.DataFrame(
        {
            "sensor": "a",
            "ts": stamps,
            "load": np.arange(72, dtype=float) + 100 * (stamps.month == 2),  # Februaries stand out
            "temperature": 0.0,
        }
    )
    uri = build(tmp_path, frame, "monthly", source__frequency="MS")
    layout, scaler = window_store.read_layout(uri), window_store.read_scaler(uri)
    windows = window_store.read_split(uri, "test", layout)
    fits = fit_challengers(uri, layout, scaler, 12)
    ours = challenger_forecasts(uri, "test", layout, scaler, 12, fits)
    forecast = to_original_units(ours["seasonal_naive_12"], windows.series, scaler, ["load"])
    actual = to_original_units(windows.y, windows.series, scaler, ["load"])
    # The value twelve months earlier is the actual minus 12, Februaries included.
    np.testing.assert_allclose(forecast, actual - 12, atol=1e-3)
