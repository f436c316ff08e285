"""The prediction-time check covers the rows prediction reads and judges each series on its
own (issue 16): old nulls do not matter, a broken series is set aside and the others go on,
drift warns, and each cause is reported once. Library only: no Prefect, no Keras.

The feed of `test_bad_inputs`: two hourly sensors of 40 rows; lookback 4, so prediction
reads each sensor's last 4 rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from seqcast.config import PipelineConfig
from seqcast.data.contracts import Contract, contract_for, derive_prediction_contract
from seqcast.data.ingest import read_source_file, resolve_source_files
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.validation import (
    QUARANTINE_REASON,
    QUARANTINE_RULE,
    validate_table,
)
from seqcast.data.validation_report import save_report
from seqcast.io import storage
from seqcast.serving.prediction import prediction_scope
from tests.conftest import forecast_layout
from tests.unit.test_bad_inputs import STEPS, check, make_config, result, rows, two_sensors, write

READ = PredictionScope(rows=4, min_rows=4)


def prediction_inputs(
    tmp_path: Path, edit_1=None, lines_2: list[str] | None = None, **contract: object
) -> tuple[Contract, PipelineConfig, pd.DataFrame, list[str]]:
    """The prediction contract trained on the clean feed, and the edited feed as read."""
    two_sensors(tmp_path)
    config = make_config(tmp_path, **contract)
    trained = derive_prediction_contract(check(config).clean, config, contract_for(config, True))
    two_sensors(tmp_path, edit_1)
    if lines_2 is not None:
        write(tmp_path / "b.csv", lines_2)
    files = resolve_source_files(config.source.path)
    raw = pd.concat([read_source_file(f) for f in files], ignore_index=True)
    return trained, config, raw, files


def prediction_check(tmp_path: Path, edit_1=None, lines_2=None, **contract: object):
    """Validate the edited feed as prediction does: the rows read, per series."""
    trained, config, raw, files = prediction_inputs(tmp_path, edit_1, lines_2, **contract)
    return validate_table(raw, trained, config.source, files, scope=READ)


def blank_load(lines: list[str], *positions: int) -> None:
    for i in positions:
        ts, sensor, _load, temperature = lines[i].split(",")
        lines[i] = f"{ts},{sensor},,{temperature}"


def test_old_nulls_before_the_rows_read_do_not_matter(tmp_path: Path) -> None:
    # the CO2 shape: blanks early in the history, a clean recent window
    trained, config, raw, files = prediction_inputs(
        tmp_path, lambda lines: blank_load(lines, 0, 3, 10, 20, 35)
    )
    report = validate_table(raw, trained, config.source, files, scope=READ)
    assert report.outcome == "pass", report.results
    assert report.rows == 2 * STEPS and report.checked_rows == 2 * 4  # older rows not read
    assert len(report.clean) == 8 and report.set_aside == {}
    assert report.clean.groupby("sensor")["ts"].min().eq(pd.Timestamp("2024-01-02 12:00Z")).all()
    # the same input checked whole, as before, fails the run
    assert validate_table(raw, trained, config.source, files).outcome == "fail"


def test_a_null_in_the_rows_read_sets_its_series_aside(tmp_path: Path) -> None:
    report = prediction_check(
        tmp_path, lambda lines: blank_load(lines, STEPS - 2), series_quarantine_limit=0.5
    )
    assert report.outcome == "quarantine"
    assert report.set_aside == {
        "sensor-1": ["not_null on 'load': 1 row(s) null value (empty, NaN or NA)"]
    }
    assert set(report.clean["sensor"]) == {"sensor-2"} and len(report.clean) == 4
    # one cause, once: the row short of its window is not also a "series too short"
    assert result(report, "series_length").outcome == "pass"
    assert "a.csv:40 sensor='sensor-1', load=''" in result(report, "not_null", "load").examples
    files = save_report(report, str(tmp_path / "root"), "run")
    quarantined = storage.read_parquet(files.quarantine_uri).to_pandas()
    assert len(quarantined) == 4 and set(quarantined["sensor"]) == {"sensor-1"}
    assert (quarantined[QUARANTINE_RULE] == "not_null:load").sum() == 1
    assert quarantined[QUARANTINE_REASON].str.contains("series 'sensor-1' set aside").sum() == 3
    assert "series set aside for this run: 1 (limit 50% of series)" in files.summary
    assert "`sensor-1`: not_null on 'load'" in files.summary


def test_too_many_series_set_aside_fail_the_run(tmp_path: Path) -> None:
    # default series_quarantine_limit 10%: one series of two is over it
    report = prediction_check(tmp_path, lambda lines: blank_load(lines, STEPS - 1))
    assert report.outcome == "fail" and report.clean.empty
    share = result(report, "quarantine_share", "(series)")
    assert share.outcome == "fail"
    assert "1 of 2 series (50.0%) would be set aside" in share.reason
    assert "series_quarantine_limit of 10%" in share.reason
    assert "series 'sensor-1': not_null on 'load'" in share.examples


def test_an_out_of_range_series_warns_and_is_predicted(tmp_path: Path) -> None:
    def spike(lines: list[str]) -> None:
        lines[-1] = lines[-1].replace(".5,", "0.5,", 1)  # load x10 in the last row read

    report = prediction_check(tmp_path, spike)
    drift = result(report, "range", "load")
    assert report.outcome == "warn" and drift.outcome == "warn" and drift.failed_rows == 1
    assert "sensor='sensor-1'" in drift.examples  # the warning names the series
    assert report.set_aside == {} and len(report.clean) == 8


def test_a_column_whose_range_fails_sets_only_its_series_aside(tmp_path: Path) -> None:
    def spike(lines: list[str]) -> None:
        lines[-1] = lines[-1].replace(".5,", "0.5,", 1)

    columns = {
        "ts": {"type": "timestamp"},
        "sensor": {"type": "string"},
        "load": {"type": "float", "min": 0, "max": 1000, "severity": "fail"},
        "temperature": {"type": "float", "min": -60, "max": 60},
    }
    report = prediction_check(tmp_path, spike, columns=columns, series_quarantine_limit=0.5)
    assert report.outcome == "quarantine"
    assert list(report.set_aside) == ["sensor-1"] and len(report.set_aside["sensor-1"]) == 1
    assert report.set_aside["sensor-1"][0].startswith("range on 'load': 1 row(s) outside")
    assert set(report.clean["sensor"]) == {"sensor-2"}


def test_a_short_series_is_reported_once_as_short(tmp_path: Path) -> None:
    report = prediction_check(tmp_path, lines_2=rows(2, steps=3), series_quarantine_limit=0.5)
    assert report.set_aside == {
        "sensor-2": [
            "series_length on 'sensor': 3 row(s) series shorter than 4 rows "
            "(what one forecast reads)"
        ]
    }
    assert set(report.clean["sensor"]) == {"sensor-1"}


def test_the_rows_read_follow_the_champion() -> None:
    layout = forecast_layout(lookback=4, horizon=2)
    hourly = {"frequency": "1h", "timezone": "UTC"}
    # a network's window must be gap-free; it reads no future rows without future features
    assert prediction_scope("network", layout, {}) == PredictionScope(4, 4, 4, 0, **hourly)
    promo = dataclasses.replace(layout, future_columns=["promo"], future_mean=[0], future_std=[1])
    assert prediction_scope("network", promo, {}) == PredictionScope(4, 4, 4, 2, **hourly)
    assert prediction_scope("last_value", layout, {}) == PredictionScope(4, 4)
    assert prediction_scope("last_value", promo, {}) == PredictionScope(4, 4)
    naive = prediction_scope("seasonal_naive", layout, {"season": 24})
    assert naive == PredictionScope(24, 24, 24, **hourly)
    fit = {"trend": "none", "season": 168, "params": {"alpha": 0.5}, "initial_seasonal": []}
    ets = prediction_scope("ets", layout, {"fits": {"s": {"y": fit}}})
    assert ets == PredictionScope(1680, 4)  # ten seasons: what the ETS refit reads
    sequence = dataclasses.replace(forecast_layout(lookback=4, horizon=0), per="sequence")
    assert prediction_scope("network", sequence, {}) == PredictionScope(None, 1)


GAP_FREE = PredictionScope(rows=4, min_rows=4, gap_free=4, frequency="1h")


def test_a_gap_in_the_rows_read_sets_only_its_series_aside(tmp_path: Path) -> None:
    trained, config, raw, files = prediction_inputs(
        tmp_path, lambda lines: lines.pop(STEPS - 3), series_quarantine_limit=0.5
    )
    report = validate_table(raw, trained, config.source, files, scope=GAP_FREE)
    assert report.outcome == "quarantine"
    # once, as a gap: not also as a warning of the gaps rule or a short series
    assert report.set_aside == {
        "sensor-1": [
            "recent_gap on 'ts': 4 row(s) gap in the last 4 steps (the rows a forecast "
            "starts from); supply the missing steps"
        ]
    }
    gap = result(report, "recent_gap", "ts")
    assert gap.examples == (
        "series 'sensor-1': no row between 2024-01-02T12:00:00+00:00 and 2024-01-02T14:00:00+00:00"
    )
    assert set(report.clean["sensor"]) == {"sensor-2"} and len(report.clean) == 4
    assert report.warnings == [f"recent_gap on 'ts': 4 row(s) {gap.reason}"]


def test_a_gap_before_the_rows_read_does_not_matter(tmp_path: Path) -> None:
    trained, config, raw, files = prediction_inputs(tmp_path, lambda lines: lines.pop(STEPS - 6))
    report = validate_table(raw, trained, config.source, files, scope=GAP_FREE)
    assert report.outcome == "pass", report.results
    assert len(report.clean) == 8 and report.set_aside == {}
