"""Baselines read each series' history beyond the input window: a season longer than the
lookback still gets a seasonal-naive forecast, aligned with the test windows across blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqcast.io import storage
from seqcast.modeling.challengers import challenger_forecasts, fit_challengers
from seqcast.modeling.evaluation import to_original_units
from seqcast.windows import store as window_store
from seqcast.windows.step import build_or_reuse
from tests.conftest import arithmetic_frame, tiny_config


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
    fits = fit_challengers(built.uri, layout, scaler, season=24)
    out = challenger_forecasts(built.uri, "test", layout, scaler, 24, fits)  # season > lookback
    assert set(out) == {"last_value", "seasonal_naive_24", "ets", "ar"} and len(test) > 0
    np.testing.assert_allclose(out["last_value"], np.repeat(test.x[:, -1:, :1], 3, axis=1))
    actual = to_original_units(test.y, test.series, scaler, ["y"])
    seasonal = to_original_units(out["seasonal_naive_24"], test.series, scaler, ["y"])
    np.testing.assert_allclose(seasonal, actual - 24, atol=1e-3)
