"""Training then prediction on calendar grids: month-end data, and a year column of integers,
with no frequency configured (both inferred) and the forecast time reported as the source
wrote it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.config import PipelineConfig
from seqcast.serving import registry
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow


def train_and_predict(config: PipelineConfig) -> pd.DataFrame:
    outcome = nightly_training(config)
    if not outcome.version.promoted:  # one epoch of 4 units need not beat the baselines
        registry.set_champion(config.pipeline_root, outcome.version.version, {"reason": "test"})
    return pd.read_parquet(batch_predict(config).uri)


def test_month_end_series_forecast_the_next_month_ends(tmp_path: Path) -> None:
    source = tmp_path / "monthly"
    source.mkdir()
    months = pd.date_range(end="2026-01-31", periods=48, freq="ME")
    rng = np.random.default_rng(0)
    for sensor in ("a", "b"):
        season = 10 * np.sin(2 * np.pi * months.month / 12)
        pd.DataFrame(
            {
                "ts": months.strftime("%Y-%m-%d"),
                "sensor": sensor,
                "load": 100 + season + rng.normal(0, 1, len(months)),
                "temperature": 10 + season,
            }
        ).to_csv(source / f"{sensor}.csv", index=False)
    config = tiny_config(
        source,
        tmp_path / "root",
        window={"lookback": 6, "horizon": 3, "normalize": "series", "calendar": ["day_of_year"]},
        split={"by": "time", "val": 0.2, "test": 0.2},
        model__epochs=1,
        model__units=[4],
    )
    frame = train_and_predict(config)
    assert (frame["origin"] == pd.Timestamp("2026-01-31", tz="UTC")).all()
    expected = ["2026-02-28", "2026-03-31", "2026-04-30"]
    for _, rows in frame.groupby("sensor"):
        assert [str(t.date()) for t in rows.sort_values("step")["ts"]] == expected
    champion = registry.load_champion(config.pipeline_root)
    assert champion.layout.frequency == "ME" and champion.layout.time_unit is None


def test_integer_year_series_forecasts_the_next_years(tmp_path: Path) -> None:
    source = tmp_path / "yearly"
    source.mkdir()
    years = np.arange(1700, 1790)
    pd.DataFrame(
        {"year": years, "sunspots": 50 + 40 * np.sin(2 * np.pi * (years - 1700) / 11)}
    ).to_csv(source / "sunspots.csv", index=False)
    config = tiny_config(
        source,
        tmp_path / "root",
        source={"path": f"{source}/*.csv", "timestamp": "year", "target": ["sunspots"]},
        window={"lookback": 11, "horizon": 2, "normalize": "series"},
        split={"by": "time", "val": 0.2, "test": 0.2},
        model__epochs=1,
        model__units=[4],
    )
    frame = train_and_predict(config)
    assert frame["year"].tolist() == [1790, 1791] and (frame["origin"] == 1789).all()
    assert frame["step"].tolist() == [1, 2] and np.isfinite(frame["sunspots"]).all()
    layout = registry.load_champion(config.pipeline_root).layout
    assert (layout.frequency, layout.time_unit) == ("YS-JAN", "year")
