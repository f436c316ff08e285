"""Rolling-origin backtest: aligned folds, no look-ahead, and only the new fold recomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.config import PipelineConfig, config_from_dict
from seqcast.data.sample import load_series
from seqcast.io import storage
from seqcast.modeling.backtest import (
    fingerprint_folds,
    fold_config,
    last_stamp_ns,
    plan_folds,
    rows_fingerprints,
    run_fold,
    summarise,
)
from seqcast.windows.step import build_or_reuse
from seqcast.windows.store import read_split
from tests.conftest import arithmetic_frame

HOUR = 3_600_000_000_000


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_folds_are_the_latest_whole_periods_aligned_to_the_epoch() -> None:
    last = ts("2024-01-10 13:00").value  # the 10th is incomplete: it is not a fold
    folds = plan_folds(last, HOUR, folds=3, steps=24)
    assert [(f.number, f.test_from, f.until) for f in folds] == [
        (1, ts("2024-01-07"), ts("2024-01-08")),
        (2, ts("2024-01-08"), ts("2024-01-09")),
        (3, ts("2024-01-09"), ts("2024-01-10")),
    ]
    # One more day of data adds one fold and keeps the others' bounds.
    later = plan_folds(ts("2024-01-11 13:00").value, HOUR, folds=3, steps=24)
    assert later[:2] == [type(f)(f.number - 1, f.test_from, f.until) for f in folds[1:]] and later[
        2
    ].test_from == ts("2024-01-10")


def arithmetic_config(tmp_path: Path, **split: object) -> PipelineConfig:
    return config_from_dict(
        {
            "name": "arith",
            "data_root": str(tmp_path / "root"),
            "source": {"path": "unused", "series_id": "id", "target": ["y"]},
            "window": {"lookback": 6, "horizon": 3, "normalize": "none"},
            "split": {"val": 0.2, **split},
        }
    )


def test_a_fold_split_tests_its_period_and_sees_nothing_after_it(tmp_path: Path) -> None:
    frame = arithmetic_frame(3, 120)  # hourly from 2024-01-01, value 1000*s + t
    uri = str(tmp_path / "validated.parquet")
    storage.write_frame(frame, uri)
    test_from, until = ts("2024-01-04 00:00"), ts("2024-01-04 12:00")
    config = arithmetic_config(tmp_path, test_from=test_from, until=until)
    built = build_or_reuse(config, uri, "fp", "id")
    hours = {name: read_split(built.uri, name) for name in ("train", "val", "test")}

    def target_steps(split: str) -> np.ndarray:
        return hours[split].y[:, :, 0] % 1000  # the step t of every target

    start, end = 72, 84  # test_from and until as steps since 2024-01-01
    assert target_steps("test").min() == start and target_steps("test").max() == end - 1
    assert len(hours["test"]) == 3 * (end - start - 3 + 1)  # every origin in the period
    assert target_steps("val").max() < start and target_steps("train").max() < start
    assert hours["test"].x[:, :, 0].max() % 1000 < end  # no input after the fold either
    assert target_steps("val").min() > target_steps("train").max() - 3  # val just before test


def rows_fingerprint(uri: str, timestamp: str, until: pd.Timestamp) -> str:
    return rows_fingerprints(uri, timestamp, [until])[0]


def test_the_rows_fingerprint_covers_exactly_the_rows_before_the_end(tmp_path: Path) -> None:
    frame = arithmetic_frame(2, 48)
    until = ts("2024-01-01 20:00")
    one, two = str(tmp_path / "one.parquet"), str(tmp_path / "two.parquet")
    storage.write_parquet(storage.pa.Table.from_pandas(frame), one, row_group_size=7)
    storage.write_parquet(storage.pa.Table.from_pandas(frame), two, row_group_size=1000)
    assert rows_fingerprint(one, "ts", until) == rows_fingerprint(two, "ts", until)
    later = frame.copy()
    later.loc[later["ts"] >= until, "y"] += 1.0  # rows at or after the end: no change
    storage.write_frame(later, two)
    assert rows_fingerprint(two, "ts", until) == rows_fingerprint(one, "ts", until)
    earlier = frame.copy()
    earlier.loc[3, "y"] += 1.0
    storage.write_frame(earlier, two)
    assert rows_fingerprint(two, "ts", until) != rows_fingerprint(one, "ts", until)
    assert last_stamp_ns(one, "ts") == ts("2024-01-02 23:00").value


@pytest.mark.slow
def test_the_next_night_computes_only_the_new_fold(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "name": "bt",
            "data_root": str(tmp_path / "root"),
            "source": {"path": "unused", "series_id": "sensor", "target": ["load"]},
            "window": {"lookback": 24, "horizon": 6},
            "model": {"units": [4], "epochs": 1, "batch_size": 64},
            "evaluate": {"season": 24, "backtest_folds": 2, "backtest_steps": 24},
        }
    )
    full = load_series(n_series=2, n_steps=24 * 12, seed=3)
    full = full.sort_values(["sensor", "ts"], ignore_index=True)
    today = str(tmp_path / "today.parquet")
    tomorrow = str(tmp_path / "tomorrow.parquet")
    storage.write_frame(full[full["ts"] < full["ts"].max() - pd.Timedelta(hours=23)], today)
    storage.write_frame(full, tomorrow)

    def night(uri: str) -> list[dict]:
        folds = fingerprint_folds(uri, "ts", plan_folds(last_stamp_ns(uri, "ts"), HOUR, 2, 24))
        return [run_fold(config, uri, "sensor", fold) for fold in folds]

    first = night(today)
    assert [r["cached"] for r in first] == [False, False]
    second = night(tomorrow)
    assert [r["cached"] for r in second] == [True, False]  # yesterday's newest fold reused
    assert second[0]["scores"] == first[1]["scores"]
    assert second[1]["test_from"] == first[1]["until"]
    for result in first + second:
        assert result["windows"]["test"] == 2 * (24 - 6 + 1)  # each series, every origin
        assert set(result["scores"]) == {"model", "last_value", "seasonal_naive_24"}
    summary = summarise(second)
    mae = summary["model"]["mae"]
    values = [r["scores"]["model"]["mae"] for r in second]
    assert mae["mean"] == pytest.approx(np.mean(values))
    assert mae["std"] == pytest.approx(np.std(values, ddof=1))
    assert fold_config(config, plan_folds(0, HOUR, 1, 24)[0]).split.by == "time"
