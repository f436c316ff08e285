"""Every bad input of issue 3 gives the outcome its severity says and a message naming the
file, the column and the rows. Library functions only: no Prefect, no Keras.

The feed: two sensors, 40 hourly rows each (80 rows, so one bad row is 1.25% and is
quarantined under the default 5% limit), lookback 4 + horizon 2 = 6 rows per series.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqcast.config import PipelineConfig, config_from_dict
from seqcast.data.contracts import Contract, contract_for, derive_prediction_contract, save_contract
from seqcast.data.ingest import read_source_file, resolve_source_files, snapshot_source
from seqcast.data.validation import (
    QUARANTINE_REASON,
    QUARANTINE_RULE,
    ValidationReport,
    validate_table,
)
from seqcast.data.validation_report import failure_message, save_report
from seqcast.errors import SourceError

HEADER = "ts,sensor,load,temperature"
STEPS = 40


def rows(sensor: int = 1, steps: int = STEPS, start: int = 0) -> list[str]:
    """Hourly rows with an offset: ``2024-01-01T05:00:00+00:00,sensor-1,105.5,12.0``."""
    stamps = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        np.arange(start, start + steps), unit="h"
    )
    return [
        f"{t.isoformat()},sensor-{sensor},{100 + sensor * 10 + i % 7}.5,{10 + i % 5}.0"
        for i, t in enumerate(stamps)
    ]


def write(path: Path, lines: list[str], header: str = HEADER, newline: str = "\n") -> Path:
    path.write_bytes(newline.join([header, *lines, ""]).encode("utf-8"))
    return path


CONTRACT = {
    "name": "feed",
    "columns": {
        "ts": {"type": "timestamp"},
        "sensor": {"type": "string"},
        "load": {"type": "float", "min": 0, "max": 1000},
        "temperature": {"type": "float", "min": -60, "max": 60},
    },
    "key": ["sensor", "ts"],
    "min_rows": 6,
    "frequency": "1h",
    "max_gap": "3h",
}


def make_config(tmp_path: Path, source: str = "*.csv", **contract: object) -> PipelineConfig:
    """A config over ``tmp_path/source`` with CONTRACT (updated by ``contract``) saved."""
    contract_path = tmp_path / "contract.yaml"
    save_contract(Contract.model_validate({**CONTRACT, **contract}), contract_path)
    return config_from_dict(
        {
            "name": "feed",
            "data_root": str(tmp_path / "data"),
            "contract": str(contract_path),
            "source": {
                "path": str(tmp_path / source),
                "series_id": "sensor",
                "target": ["load"],
                "features": ["temperature"],
            },
            "window": {"lookback": 4, "horizon": 2},
        }
    )


def check(config: PipelineConfig, predicting: bool = False) -> ValidationReport:
    """Ingest as the pipeline does (text, with file and line) and validate."""
    files = resolve_source_files(config.source.path)
    raw = pd.concat([read_source_file(f) for f in files], ignore_index=True)
    return validate_table(raw, contract_for(config, predicting), config.source, files)


def result(report: ValidationReport, rule: str, column: str | None = None):
    found = [r for r in report.results if r.rule == rule and column in (None, r.column)]
    assert found, f"no result for rule {rule} on {column}: {report.results}"
    return found[0]


def message(report: ValidationReport) -> str:
    return failure_message(report, "REPORT", "the contract contract.yaml")


def two_sensors(tmp_path: Path, edit=None) -> None:
    """sensor-1 in a.csv (optionally edited), sensor-2 in b.csv."""
    lines = rows(1)
    if edit:
        edit(lines)
    write(tmp_path / "a.csv", lines)
    write(tmp_path / "b.csv", rows(2))


# ---- clean data and encodings ------------------------------------------------------------


def test_clean_feed_passes_and_is_typed(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    report = check(make_config(tmp_path))
    assert report.outcome == "pass", report.results
    assert len(report.clean) == 2 * STEPS and report.quarantined.empty
    assert str(report.clean["ts"].dt.tz) == "UTC"
    assert report.clean["load"].dtype == np.float64
    assert report.clean.iloc[0].to_dict()["load"] == 110.5


def test_bom_and_crlf_are_read_like_plain_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", rows(1), newline="\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    write(tmp_path / "b.csv", rows(2))
    report = check(make_config(tmp_path))
    assert report.outcome == "pass", report.results
    assert report.clean["sensor"].tolist()[:1] == ["sensor-1"]  # no BOM in the header


def test_naive_timestamps_take_the_source_timezone(tmp_path: Path) -> None:
    naive = [r.replace("+00:00", "") for r in rows(1)]
    write(tmp_path / "a.csv", naive)
    config = make_config(tmp_path, source="a.csv")
    config = config.model_copy(
        update={"source": config.source.model_copy(update={"timezone": "Europe/Berlin"})}
    )
    report = check(config)
    assert report.outcome == "pass", report.results
    assert report.clean["ts"].iloc[0] == pd.Timestamp("2023-12-31T23:00", tz="UTC")


def test_source_files_are_never_modified(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(3, lines[3].replace("113.5", "x")))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.glob("*.csv")}
    config = make_config(tmp_path)
    snapshot = snapshot_source(config.source, config.pipeline_root)
    raw = pd.read_parquet(snapshot.uri)
    report = validate_table(raw, contract_for(config), config.source, snapshot.files)
    save_report(report, config.pipeline_root, "run")
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.glob("*.csv")}
    assert after == before
    assert raw.loc[3, "load"] == "x"  # the snapshot keeps the value as read


# ---- the bad inputs ----------------------------------------------------------------------


def test_empty_file_fails_the_row_count_rule(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"")
    report = check(make_config(tmp_path))
    assert report.outcome == "fail"
    assert [r.rule for r in report.failures] == ["row_count"]
    text = message(report)
    assert "a.csv" in text and "rule row_count" in text and "no data rows" in text


def test_header_only_file_fails_the_row_count_rule(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", [])
    report = check(make_config(tmp_path))
    assert result(report, "row_count").outcome == "fail"
    assert [r.rule for r in report.failures] == ["row_count"]  # the columns are all there
    assert "a.csv" in message(report) and "0 row(s) no data rows" in message(report)


def test_an_empty_file_among_others_is_a_warning(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    write(tmp_path / "c.csv", [])
    report = check(make_config(tmp_path))
    assert report.outcome == "warn"
    assert result(report, "empty_file").examples == "c.csv"


def test_missing_required_column_fails(tmp_path: Path) -> None:
    lines = [r.rsplit(",", 1)[0] for r in rows(1)]
    write(tmp_path / "a.csv", lines, header="ts,sensor,load")
    report = check(make_config(tmp_path))
    failed = result(report, "required_columns", "temperature")
    assert failed.outcome == "fail" and failed.failed_rows == STEPS
    text = message(report)
    assert "a.csv" in text and "column 'temperature'" in text and "column missing" in text


def test_unexpected_extra_column_warns_and_is_dropped(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", [f"{r},x" for r in rows(1)], header=f"{HEADER},note")
    report = check(make_config(tmp_path))
    extra = result(report, "extra_columns", "note")
    assert report.outcome == "warn" and extra.outcome == "warn"
    assert "not in the contract" in extra.reason
    assert "note" not in report.clean.columns and len(report.clean) == STEPS


def test_one_value_of_the_wrong_type_is_quarantined(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(3, lines[3].replace("113.5", '"113,5"')))
    report = check(make_config(tmp_path))
    bad = result(report, "type", "load")
    assert report.outcome == "quarantine" and bad.outcome == "quarantine"
    assert bad.failed_rows == 1 and "a.csv:5 load='113,5'" in bad.examples
    assert report.quarantined[QUARANTINE_RULE].tolist() == ["type:load"]
    assert report.quarantined[QUARANTINE_REASON].tolist() == ["not a number"]
    assert len(report.clean) == 2 * STEPS - 1


def test_a_column_that_became_text_fails_above_the_quarantine_limit(tmp_path: Path) -> None:
    two_sensors(
        tmp_path,
        lambda lines: lines.__setitem__(
            slice(None), [r.replace(".5,", ".5 kW,", 1) for r in lines]
        ),
    )
    report = check(make_config(tmp_path))
    assert result(report, "type", "load").failed_rows == STEPS
    share = result(report, "quarantine_share")
    assert report.outcome == "fail" and share.outcome == "fail"
    text = message(report)
    assert "40 of 80 rows (50.0%) would be quarantined" in text
    assert "type on 'load': 40" in text and "a.csv:2 load='110.5 kW'" in text


def test_unparseable_timestamps_are_quarantined_with_their_lines(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(0, "2024-13-01 25:00" + lines[0][25:]))
    report = check(make_config(tmp_path))
    bad = result(report, "timestamp", "ts")
    assert bad.outcome == "quarantine" and bad.failed_rows == 1
    assert bad.reason == "not a timestamp in ISO 8601"
    assert result(report, "not_null", "ts").outcome == "pass"  # reported once, as unparseable
    assert bad.examples.startswith("a.csv:2 ts='2024-13-01 25:00'")


def test_nonexistent_local_time_is_not_guessed(tmp_path: Path) -> None:
    naive = [f"2024-03-31 {h:02d}:00,sensor-1,1.0,1.0" for h in range(8)]
    write(tmp_path / "a.csv", naive)
    config = make_config(tmp_path, source="a.csv", min_rows=1, max_gap="2h")
    config = config.model_copy(
        update={"source": config.source.model_copy(update={"timezone": "Europe/Berlin"})}
    )
    report = check(config)
    bad = result(report, "timestamp", "ts")
    assert bad.failed_rows == 1 and "02:00" in bad.examples
    assert "not a valid local time in Europe/Berlin" in bad.reason


def test_mixing_naive_and_offset_timestamps_fails(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(4, lines[4].replace("+00:00", "")))
    report = check(make_config(tmp_path))
    mixed = result(report, "timezone", "ts")
    assert report.outcome == "fail" and mixed.failed_rows == 1
    text = message(report)
    assert "mixes 79 timestamps with a UTC offset and 1 without" in text
    assert "without a.csv:6 ts='2024-01-01T04:00:00'" in text


def test_duplicate_keys_fail_and_name_the_repeats(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.insert(10, lines[9]))
    report = check(make_config(tmp_path))
    dup = result(report, "unique_key")
    assert report.outcome == "fail" and dup.failed_rows == 1
    assert "a.csv:12 sensor='sensor-1', ts='2024-01-01T09:00:00+00:00'" in message(report)


def test_duplicate_keys_can_be_quarantined_keeping_the_first(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.insert(10, lines[9]))
    report = check(make_config(tmp_path, severity={"unique_key": "quarantine"}))
    assert report.outcome == "quarantine"
    assert report.quarantined["_source_line"].tolist() == [12]
    assert len(report.clean) == 2 * STEPS


def test_out_of_order_rows_are_sorted_with_a_warning(tmp_path: Path) -> None:
    def swap(lines: list[str]) -> None:
        lines[5], lines[6] = lines[6], lines[5]

    two_sensors(tmp_path, swap)
    report = check(make_config(tmp_path))
    order = result(report, "order", "ts")
    assert report.outcome == "warn" and order.outcome == "warn" and order.failed_rows == 1
    assert order.examples.startswith("a.csv:8 ts='2024-01-01T05:00:00+00:00'")
    assert (
        report.clean["ts"].is_monotonic_increasing
        or report.clean.groupby("sensor")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    )


def test_out_of_order_rows_fail_when_the_contract_forbids_them(tmp_path: Path) -> None:
    def swap(lines: list[str]) -> None:
        lines[5], lines[6] = lines[6], lines[5]

    two_sensors(tmp_path, swap)
    report = check(make_config(tmp_path, severity={"order": "fail"}))
    assert report.outcome == "fail"
    assert "rule order on column 'ts'" in message(report) and "a.csv:8" in message(report)


def test_gap_larger_than_allowed_warns_by_default_and_can_fail(tmp_path: Path) -> None:
    def drop(lines: list[str]) -> None:
        del lines[10:15]  # 09:00 then 15:00: a 6h step

    two_sensors(tmp_path, drop)
    gap = result(check(make_config(tmp_path)), "gaps", "ts")
    assert gap.outcome == "warn" and gap.failed_rows == 1
    assert "a.csv:12 ts='2024-01-01T15:00:00+00:00' after a gap of 6h" in gap.examples
    strict = check(make_config(tmp_path, severity={"gaps": "fail"}))
    assert strict.outcome == "fail" and "longer than max_gap 3h" in message(strict)


def test_wrong_frequency_fails(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    report = check(make_config(tmp_path, frequency="30min", max_gap=None))
    assert report.outcome == "fail"
    assert "series 'sensor-1' steps by 1h" in message(report)


def test_nan_and_inf_in_target_and_feature_are_quarantined(tmp_path: Path) -> None:
    def spoil(lines: list[str]) -> None:
        lines[1] = lines[1].replace("111.5", "NaN")
        lines[2] = lines[2].replace("112.5", "-inf")
        lines[3] = lines[3].replace(",13.0", ",inf")

    two_sensors(tmp_path, spoil)
    report = check(make_config(tmp_path))
    assert report.outcome == "quarantine"
    assert result(report, "not_null", "load").examples == "a.csv:3 load='NaN'"
    assert result(report, "finite", "load").examples == "a.csv:4 load='-inf'"
    assert result(report, "finite", "temperature").examples == "a.csv:5 temperature='inf'"
    assert result(report, "range", "load").outcome == "pass"  # inf is reported once
    assert report.quarantined[QUARANTINE_RULE].tolist() == [
        "not_null:load",
        "finite:load",
        "finite:temperature",
    ]
    assert np.isfinite(report.clean[["load", "temperature"]].to_numpy()).all()


def test_quarantined_rows_are_written_with_rule_and_reason(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(1, lines[1].replace("111.5", "NaN")))
    config = make_config(tmp_path)
    report = check(config)
    files = save_report(report, config.pipeline_root, "run-1")
    assert files.quarantine_uri == f"{tmp_path}/data/feed/quarantine/run-1.parquet"
    table = pq.read_table(files.quarantine_uri).to_pandas()
    assert table[["_source_file", "_source_line", "load"]].values.tolist() == [["a.csv", 3, "NaN"]]
    assert table[QUARANTINE_REASON].tolist() == ["null value (empty, NaN or NA)"]
    assert "quarantined rows: 1 (1.2%; limit 5%)" in files.summary


def test_values_out_of_range_are_quarantined(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(7, lines[7].replace(",12.0", ",999")))
    report = check(make_config(tmp_path))
    bad = result(report, "range", "temperature")
    assert bad.outcome == "quarantine" and bad.failed_rows == 1
    assert bad.reason == "outside the allowed range [-60.0, 60.0]"
    assert bad.examples == "a.csv:9 temperature='999'"


def test_out_of_range_can_be_a_warning_per_column(tmp_path: Path) -> None:
    two_sensors(tmp_path, lambda lines: lines.__setitem__(7, lines[7].replace(",12.0", ",999")))
    columns = {
        **CONTRACT["columns"],
        "temperature": {"type": "float", "max": 60, "severity": "warn"},
    }
    report = check(make_config(tmp_path, columns=columns))
    assert result(report, "range", "temperature").outcome == "warn"
    assert len(report.clean) == 2 * STEPS  # kept


def test_series_shorter_than_one_window_is_quarantined(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    write(tmp_path / "c.csv", rows(3, steps=3))
    report = check(make_config(tmp_path))
    short = result(report, "series_length", "sensor")
    assert short.outcome == "quarantine" and short.failed_rows == 3
    assert short.examples == "series 'sensor-3': 3 row(s)"
    assert sorted(report.clean["sensor"].unique()) == ["sensor-1", "sensor-2"]


def test_stale_data_warns_on_freshness(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    config = make_config(tmp_path, freshness="1d")
    files = resolve_source_files(config.source.path)
    raw = pd.concat([read_source_file(f) for f in files], ignore_index=True)
    now = pd.Timestamp("2024-01-05", tz="UTC").to_pydatetime()
    report = validate_table(raw, contract_for(config), config.source, files, now=now)
    stale = result(report, "freshness", "ts")
    assert stale.outcome == "warn" and stale.failed_rows == 2
    assert "series 'sensor-1' ends 2024-01-02T15:00:00+00:00" in stale.examples


def test_unseen_series_fails_against_the_prediction_contract(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    config = make_config(tmp_path)
    training = check(config).clean
    contract = derive_prediction_contract(training, config, contract_for(config, True))
    (tmp_path / "b.csv").unlink()
    write(tmp_path / "a.csv", [r.replace("sensor-1", "sensor-9") for r in rows(1)])
    files = resolve_source_files(config.source.path)
    raw = read_source_file(files[0])
    report = validate_table(raw, contract, config.source, files)
    unseen = result(report, "categories", "sensor")
    assert report.outcome == "fail" and unseen.failed_rows == STEPS
    text = failure_message(report, "REPORT", "the prediction contract")
    assert "a.csv" in text and "column 'sensor'" in text
    assert "not one of the allowed values ['sensor-1', 'sensor-2']" in text
    assert "a.csv:2 sensor='sensor-9'" in text


def test_skewed_prediction_input_warns_on_the_widened_training_range(tmp_path: Path) -> None:
    two_sensors(tmp_path)
    config = make_config(tmp_path)
    contract = derive_prediction_contract(check(config).clean, config, contract_for(config, True))
    assert contract.columns["load"].max < 200  # training 110.5..126.5, widened by 10% of span
    write(tmp_path / "a.csv", [r.replace(".5,", "0.5,", 1) for r in rows(1)])  # load x10
    files = resolve_source_files(config.source.path)
    raw = pd.concat([read_source_file(f) for f in files], ignore_index=True)
    report = validate_table(raw, contract, config.source, files)
    assert report.outcome == "warn"  # drift is expected: `severity: fail` per column refuses it
    skewed = result(report, "range", "load")
    assert skewed.outcome == "warn" and skewed.failed_rows == STEPS


def test_unseen_label_at_prediction_time_warns(tmp_path: Path) -> None:
    labels = ["idle", "walk"] * (STEPS // 2)
    lines = [
        f"{r.rsplit(',', 2)[0]},{r.split(',')[3]},{lab}"
        for r, lab in zip(rows(1), labels, strict=True)
    ]
    write(tmp_path / "a.csv", lines, header="ts,sensor,accel,activity")
    config = config_from_dict(
        {
            "name": "act",
            "data_root": str(tmp_path / "data"),
            "source": {
                "path": str(tmp_path / "a.csv"),
                "series_id": "sensor",
                "target": ["activity"],
                "features": ["accel"],
            },
            "task": "classify",
            "window": {"lookback": 4, "horizon": 0},
        }
    )
    training = check(config).clean
    contract = derive_prediction_contract(
        training, config, contract_for(config, True), classes=["idle", "walk"]
    )
    write(
        tmp_path / "a.csv",
        [*lines[:-1], lines[-1].replace("walk", "jump")],
        header="ts,sensor,accel,activity",
    )
    files = resolve_source_files(config.source.path)
    report = validate_table(read_source_file(files[0]), contract, config.source, files)
    unseen = result(report, "categories", "activity")
    assert report.outcome == "warn" and unseen.outcome == "warn"
    assert unseen.examples == "a.csv:41 activity='jump'"
    assert "allowed values ['idle', 'walk']" in unseen.reason


def test_truncated_parquet_names_the_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ts": ["2024-01-01T00:00:00Z"], "sensor": ["s"], "load": [1.0]})
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pandas(frame), good)
    (tmp_path / "bad.parquet").write_bytes(good.read_bytes()[:-20])
    with pytest.raises(SourceError, match=r"bad\.parquet is not a readable Parquet file"):
        read_source_file(str(tmp_path / "bad.parquet"))


def test_parquet_source_reads_as_text_and_validates(tmp_path: Path) -> None:
    frame = pd.read_csv(write(tmp_path / "x.txt", rows(1)))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "a.parquet")
    report = check(make_config(tmp_path, source="*.parquet"))
    assert report.outcome == "pass", report.results
    assert report.clean["ts"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_non_utf8_file_names_line_and_byte(tmp_path: Path) -> None:
    lines = rows(1)
    lines[1] = lines[1].replace("sensor-1", "Zürich")
    (tmp_path / "a.csv").write_bytes("\n".join([HEADER, *lines]).encode("latin-1"))
    with pytest.raises(SourceError, match=r"a\.csv is not UTF-8 text: byte 0xfc at line 3"):
        check(make_config(tmp_path))


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    data = gzip.compress("\n".join([HEADER, *rows(1)]).encode())
    (tmp_path / "a.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"a\.csv\.gz is not a readable gzip file"):
        check(make_config(tmp_path, source="*.csv.gz"))


def test_ragged_csv_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", [*rows(1)[:3], "2024-01-02T00:00:00Z,sensor-1,1,2,3"])
    with pytest.raises(SourceError, match=r"a\.csv is not a well-formed CSV file: .*line 5"):
        check(make_config(tmp_path))


def test_glob_matching_nothing_fails(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"matches no files; check the pattern"):
        check(make_config(tmp_path, source="nothing-*.csv"))


def test_path_that_does_not_exist_fails(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.csv' does not exist"):
        check(make_config(tmp_path, source="missing.csv"))
