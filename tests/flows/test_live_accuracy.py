"""Issue 17, live accuracy: ten simulated nights of one pipeline. One training run, then a
prediction run per night; each night one more day of actuals has arrived. From day
`SHIFT_DAY` on the level steps up by `STEP` every day (a break no forecast made the night
before can see), so the nights that score those days are degraded, and with
``monitor.nights: 2`` the degradation event goes out on the second of them, once.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.config import PipelineConfig
from seqcast.monitoring import live_history
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow

START = pd.Timestamp("2026-05-01", tz="UTC")
TRAIN_DAYS = 10
NIGHTS = 10
SHIFT_DAY = 14
"""The first shifted day: night 6 scores it (night k holds days 0 .. TRAIN_DAYS + k - 2)."""
STEP = 20.0
FIRST_DEGRADED_NIGHT = SHIFT_DAY - TRAIN_DAYS + 2


def load_days(days: int) -> pd.DataFrame:
    """Two hourly sensors, a daily cycle plus small noise; the level breaks at SHIFT_DAY."""
    rng = np.random.default_rng(7)
    hours = np.arange(24 * days)
    frames = []
    for k, sensor in enumerate(("s-1", "s-2")):
        cycle = 10.0 + 3.0 * np.sin(2 * np.pi * hours / 24 + k)
        shift = STEP * np.clip(hours // 24 - SHIFT_DAY + 1, 0, None)
        load = cycle + shift + rng.normal(0.0, 0.2, len(hours))
        frames.append(
            pd.DataFrame(
                {"ts": START + pd.to_timedelta(hours, unit="h"), "sensor": sensor, "load": load}
            )
        )
    return pd.concat(frames, ignore_index=True)


def write_source(directory: Path, days: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    load_days(days).to_csv(directory / "load.csv", index=False)


def night(k: int) -> date:
    """Night k runs at the start of the day after the last day it holds."""
    return (START + timedelta(days=TRAIN_DAYS + k - 1)).date()


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the pipeline emits, recorded on its way to Prefect (still sent)."""
    import tasks.events

    sent: list[dict[str, Any]] = []
    real = tasks.events.emit_event

    def record(**event: Any) -> Any:
        sent.append(event)
        return real(**event)

    monkeypatch.setattr(tasks.events, "emit_event", record)
    return sent


def pipeline(source: Path, root: Path) -> PipelineConfig:
    return tiny_config(
        source,
        root,
        source={
            "path": f"{source}/*.csv",
            "timestamp": "ts",
            "series_id": "sensor",
            "target": ["load"],
            "features": [],
        },
        window={"lookback": 24, "horizon": 24, "stride": 1},
        model__epochs=2,
        evaluate={"season": 24},
        monitor={"degradation": 2.0, "nights": 2, "retrain_on_degradation": True},
    )


def test_ten_nights_score_live_accuracy_and_alert_on_the_second_degraded_night(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emitted: list[dict[str, Any]]
) -> None:
    source = tmp_path / "source"
    write_source(source, TRAIN_DAYS)
    config = pipeline(source, tmp_path / "root")
    nightly_training(config)
    root = config.pipeline_root

    results = {}
    for k in range(1, NIGHTS + 1):
        write_source(source, TRAIN_DAYS + k - 1)  # one more day of actuals arrived
        monkeypatch.setattr("flows.prediction.logical_date", lambda k=k: night(k))
        batch_predict(config)
        results[k] = live_history.read_summary(root, night(k))

    # Night 1 has nothing published before it; every later night scores the day that came.
    assert results[1] is not None and results[1]["pairs"] == 0
    for k in range(2, NIGHTS + 1):
        summary = results[k]
        assert summary is not None and summary["pairs"] == 2 * 24, (k, summary)
        assert summary["versions"] and summary["test_mae"] > 0
    degraded = [k for k in results if results[k]["degraded"]]
    assert degraded == list(range(FIRST_DEGRADED_NIGHT, NIGHTS + 1)), {
        k: results[k]["ratio"] for k in results
    }
    # Before the break the champion still beats the seasonal-naive forecast live.
    for k in range(2, FIRST_DEGRADED_NIGHT):
        assert results[k]["ratio"] < 2.0

    # One event, on the second degraded night (monitor.nights: 2), not before, not again.
    alerted = [k for k in results if results[k]["event_emitted"]]
    assert alerted == [FIRST_DEGRADED_NIGHT + 1]
    (event,) = [e for e in emitted if e["event"] == "seqcast.accuracy.degraded"]
    assert event["resource"]["prefect.resource.id"] == "seqcast.pipeline.tiny"
    assert event["resource"]["seqcast.retrain"] == "true"
    assert event["payload"]["nights"] == 2 and event["payload"]["ratio"] > 2.0
    assert event["payload"]["night"] == night(FIRST_DEGRADED_NIGHT + 1).isoformat()

    # The history is Parquet per night; the UI gets the table and the chart.
    detail = pd.read_parquet(
        Path(root, "monitor/live", night(NIGHTS).isoformat(), "detail.parquet")
    )
    assert set(detail["step"]) == set(range(1, 25)) and set(detail["series"]) == {"s-1", "s-2"}
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts() if a.key}
    assert {"tiny-live-accuracy", "tiny-live-accuracy-chart"} <= keys
