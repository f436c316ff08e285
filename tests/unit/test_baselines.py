"""Baselines read each series' history beyond the input window: a season longer than the
lookback still gets a seasonal-naive forecast, aligned with the test windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqcast.io import storage
from seqcast.modeling.baselines import block_forecasts, history_forecasts
from seqcast.modeling.evaluation import to_original_units
from seqcast.windows import store as window_store
from seqcast.windows.step import build_or_reuse
from seqcast.windows.windowing import SPLITS, SeriesWindows
from tests.conftest import arithmetic_frame, forecast_layout, tiny_config

HOUR_NS = 3_600_000_000_000


def rows_with_gap(n: int, gap_after: int) -> SeriesWindows:
    """One series, value t at row t, hourly, with one missing hour after row ``gap_after``."""
    stamps = np.arange(n, dtype=np.int64) * HOUR_NS
    stamps[gap_after + 1 :] += HOUR_NS
    return SeriesWindows(
        stamps=stamps,
        inputs=np.arange(n, dtype=np.float32)[:, None],
        future=np.zeros((n, 0), np.float32),
        labels=np.empty(0, np.int32),
        series=np.zeros(n, np.int32),
        names=["a"],
        static=np.zeros((1, 0), np.float32),
        starts={s: np.empty(0, np.int64) for s in SPLITS},
    )


def test_season_longer_than_lookback_reads_earlier_rows() -> None:
    layout = forecast_layout(lookback=4, horizon=3)
    rows = rows_with_gap(50, gap_after=29)
    # Window starts: 20 (origin 23: a season back is rows 14..16), 2 (origin 5: no season
    # of history yet), 33 (origin 36: rows 27..29 lie across the gap), 36 (origin 39: 30..32).
    out = block_forecasts(rows, np.array([20, 2, 33, 36]), layout, season=10)
    assert out["last_value"][:, :, 0].tolist() == [[23] * 3, [5] * 3, [36] * 3, [39] * 3]
    assert out["seasonal_naive_10"][:, :, 0].tolist() == [
        [14, 15, 16],
        [5, 5, 5],  # falls back to the last value
        [36, 36, 36],  # falls back too: a gap between
        [30, 31, 32],
    ]


def test_a_horizon_longer_than_the_season_repeats_the_last_season() -> None:
    layout = forecast_layout(lookback=4, horizon=5)
    out = block_forecasts(rows_with_gap(30, gap_after=40), np.array([10]), layout, season=2)
    assert out["seasonal_naive_2"][0, :, 0].tolist() == [12, 13, 12, 13, 12]


def test_store_forecasts_align_with_the_test_windows(tmp_path: Path) -> None:
    frame = arithmetic_frame(n_series=2, n_steps=100)  # series s holds 1000*s + t at step t
    uri = str(tmp_path / "validated.parquet")
    storage.write_frame(frame, uri)
    config = tiny_config(
        tmp_path,
        tmp_path / "root",
        source={"path": "unused", "timestamp": "ts", "series_id": "id", "target": ["y"]},
        window={"lookback": 4, "horizon": 3, "stride": 1},
        split={"by": "time", "val": 0.2, "test": 0.2},
    )
    built = build_or_reuse(config, uri, "fp", "id", block_rows=60)  # several blocks
    layout = window_store.read_layout(built.uri)
    scaler = window_store.read_scaler(built.uri)
    test = window_store.read_split(built.uri, "test", layout)
    out = history_forecasts(built.uri, "test", layout, season=24)  # season > lookback
    assert set(out) == {"last_value", "seasonal_naive_24"} and len(test) > 0
    np.testing.assert_allclose(out["last_value"], np.repeat(test.x[:, -1:, :1], 3, axis=1))
    actual = to_original_units(test.y, test.series, scaler, ["y"])
    seasonal = to_original_units(out["seasonal_naive_24"], test.series, scaler, ["y"])
    np.testing.assert_allclose(seasonal, actual - 24, atol=1e-3)
