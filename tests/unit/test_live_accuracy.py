"""Live accuracy's parts (issue 17): which forecasts a night scores, against which actuals
and seasonal-naive values, and when a run of bad nights alerts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.config import SourceSpec
from seqcast.data.contracts import ColumnRule, Contract
from seqcast.monitoring import live_accuracy as live
from seqcast.monitoring import live_history as history
from seqcast.windows.windowing import WindowLayout

HOUR = 3600 * 10**9
T0 = pd.Timestamp("2026-01-01", tz="UTC")
SOURCE = SourceSpec(path="x.csv", timestamp="ts", series_id="id", target=["y"])


def layout(frequency: str | None = None) -> WindowLayout:
    return WindowLayout(
        task="forecast",
        lookback=4,
        horizon=3,
        stride=1,
        series_column="id",
        timestamp="ts",
        input_columns=["y"],
        target_columns=["y"],
        classes=[],
        step_seconds=3600.0,
        frequency=frequency,
    )


def prediction_file(path: Path, origin: pd.Timestamp, values: list[float], **extra: list) -> str:
    steps = np.arange(1, len(values) + 1)
    frame = pd.DataFrame(
        {
            "id": "a",
            "origin": origin,
            "ts": origin + pd.to_timedelta(steps, unit="h"),
            "step": steps.astype(np.int32),
            "y": values,
            **extra,
            "model_version": "v1",
            "model_kind": "network",
            "flow_run_id": "run",
        }
    )
    frame.to_parquet(path)
    return str(path)


def snapshot(path: Path, values: dict[int, str]) -> str:
    """A raw snapshot (text values) of series "a" with ``values`` at hours from T0."""
    frame = pd.DataFrame(
        {
            "ts": [(T0 + pd.Timedelta(hours=h)).isoformat() for h in values],
            "id": "a",
            "y": list(values.values()),
            "_source_file": "x.csv",
            "_source_line": np.arange(len(values)) + 2,
        }
    )
    frame.to_parquet(path)
    return str(path)


def contract(low: float | None = None, high: float | None = None) -> Contract:
    return Contract(
        name="t",
        columns={
            "ts": ColumnRule(type="timestamp"),
            "id": ColumnRule(type="string"),
            "y": ColumnRule(type="float", min=low, max=high),
        },
        key=["id", "ts"],
    )


def test_a_night_scores_matured_forecasts_once_against_clean_actuals(tmp_path: Path) -> None:
    origin = T0 + pd.Timedelta(hours=3)
    uri = prediction_file(
        tmp_path / "p.parquet",
        origin,
        [10.0, 20.0, 30.0],
        **{"y_q0.1": [9.0, 19.0, 29.0], "y_q0.9": [11.0, 21.0, 31.0]},
    )
    # Hours 0-3 are history (the seasonal naive with season 2 repeats hours 2, 3);
    # hour 6 is out of the contract's range and is not scored.
    raw = snapshot(
        tmp_path / "raw.parquet",
        {0: "1", 1: "2", 2: "3", 3: "4", 4: "10.5", 5: "25", 6: "999"},
    )
    forecasts = live.pending_forecasts([uri], layout(), SOURCE, "id", scored_through=None)
    assert len(forecasts.frame) == 3
    naive_from = live.naive_stamps(forecasts, layout(), season=2)
    assert list((naive_from - origin.value) // HOUR) == [-1, 0, -1]
    actuals = live.read_actuals(raw, SOURCE, contract(high=100.0), "y", int(naive_from.min()))
    scored = live.score(forecasts, actuals, naive_from)
    detail = scored.detail.set_index("step")
    assert list(detail.index) == [1, 2]  # step 3's actual (999) is out of range
    assert detail.loc[1, "abs_error"] == pytest.approx(0.5)  # |10 - 10.5|
    assert detail.loc[2, "abs_error"] == pytest.approx(5.0)  # |20 - 25|
    assert detail.loc[1, "naive_abs_error"] == pytest.approx(7.5)  # |3 - 10.5|
    assert detail.loc[2, "naive_abs_error"] == pytest.approx(21.0)  # |4 - 25|
    assert list(detail["covered"]) == [1, 0] and list(detail["band_pairs"]) == [1, 1]
    assert scored.scored_through == (T0 + pd.Timedelta(hours=5)).value

    (version,) = live.version_scores(scored.detail, {"v1": 2.0})
    assert version.live_mae == pytest.approx(2.75) and version.ratio == pytest.approx(1.375)
    assert version.naive_mae == pytest.approx(14.25) and version.coverage == pytest.approx(0.5)

    # The next night starts after what this one saw: nothing of this file is left but
    # step 3, whose actual never came clean.
    later = live.pending_forecasts([uri], layout(), SOURCE, "id", scored.scored_through)
    assert list(later.frame["step"]) == [3]


def test_seasonal_naive_of_monthly_forecasts_reads_the_same_month_a_season_back() -> None:
    origin = pd.Timestamp("2025-12-31", tz="UTC")  # month ends
    stamps = pd.DatetimeIndex(["2026-01-31", "2026-02-28", "2026-12-31"], tz="UTC")
    frame = pd.DataFrame(
        {
            live.SERIES: "a",
            "origin_ns": origin.value,
            live.STAMP: stamps.asi8,
            "step": [1, 2, 12],
        }
    )
    got = live.naive_stamps(live.Forecasts(frame), layout("ME"), season=12)
    assert list(pd.DatetimeIndex(got, tz="UTC").strftime("%Y-%m-%d")) == [
        "2025-01-31",
        "2025-02-28",
        "2025-12-31",
    ]


def summary(ratio: float | None, degraded: bool, emitted: bool = False) -> dict:
    return {"ratio": ratio, "degraded": degraded, "event_emitted": emitted}


def test_a_streak_counts_degraded_nights_skips_empty_ones_and_alerts_once() -> None:
    nights = [summary(1.0, False), summary(3.0, True), summary(None, False), summary(3.0, True)]
    assert history.degraded_streak(nights) == 2
    assert history.degraded_streak([*nights, summary(1.1, False)]) == 0
    assert not history.alerted_in_streak(nights, 2)
    alerted = [summary(1.0, False), summary(3.0, True, emitted=True), summary(3.0, True)]
    assert history.alerted_in_streak(alerted, 2)
    # an alert from an earlier streak does not silence a new one
    assert not history.alerted_in_streak([*alerted, summary(1.0, False), summary(3.0, True)], 1)
    # a rerun of a night that alerted keeps its alert, even with no streak before it
    assert history.alerted_in_streak(nights, 0, rerun_of=summary(3.0, True, emitted=True))
    assert not history.alerted_in_streak(nights, 2, rerun_of=summary(3.0, True))


def test_a_night_without_its_summary_does_not_exist(tmp_path: Path) -> None:
    root = str(tmp_path)
    night = date(2026, 1, 5)
    history.write_night(root, night, pd.DataFrame({"x": [1]}), {"night": "2026-01-05"})
    # a run killed between the detail and the summary of the next night
    folder = Path(history.night_uri(root, date(2026, 1, 6)))
    folder.mkdir(parents=True)
    pd.DataFrame({"x": [2]}).to_parquet(folder / history.DETAIL)
    assert [s["night"] for s in history.read_summaries(root)] == ["2026-01-05"]
    assert history.read_summaries(root, before=night) == []
