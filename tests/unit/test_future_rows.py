"""Future rows (issue 16): the rows after each series' last observed target carry the
known-future covariates of the forecast steps. Training sets them aside; prediction keeps
the ``horizon`` rows after each origin, checks their covariates per series, and refuses the
run, naming series and timestamps, when one is missing. Library only: no Prefect, no Keras.

The feed: two hourly sensors of 40 observed rows (``load``, a 0/1 ``promo``) and future rows
with ``load`` blank; lookback 4, horizon 2.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seqcast.config import PipelineConfig, config_from_dict
from seqcast.data.contracts import contract_for, derive_prediction_contract
from seqcast.data.ingest import read_source_file, resolve_source_files, snapshot_source
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.validation import ValidationReport, table_schema, validate_table
from seqcast.errors import ConfigError
from seqcast.io import storage
from tests.unit.test_bad_inputs import message, result

STEPS = 40
HEADER = "ts,sensor,load,promo"
READ = PredictionScope(rows=4, min_rows=4, gap_free=4, future_steps=2, frequency="1h")
START = pd.Timestamp("2024-01-01", tz="UTC")


def stamp(hour: int) -> str:
    return (START + pd.Timedelta(hours=hour)).isoformat()


def observed(sensor: int) -> list[str]:
    load = [100 + 10 * sensor + h % 7 for h in range(STEPS)]
    return [f"{stamp(h)},sensor-{sensor},{v}.5,{h % 3 // 2}" for h, v in enumerate(load)]


def future(sensor: int, flags: list[str]) -> list[str]:
    """Rows after the last observation: ``load`` blank, ``promo`` as given ('' = blank)."""
    return [f"{stamp(STEPS + i)},sensor-{sensor},,{flag}" for i, flag in enumerate(flags)]


def write(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines, ""]), encoding="utf-8")
    return path


def make_config(tmp_path: Path, **source: object) -> PipelineConfig:
    return config_from_dict(
        {
            "name": "promo",
            "data_root": str(tmp_path / "data"),
            "source": {
                "path": str(tmp_path / "*.csv"),
                "series_id": "sensor",
                "target": ["load"],
                "future_features": ["promo"],
                **source,
            },
            "window": {"lookback": 4, "horizon": 2},
        }
    )


def feed(tmp_path: Path, future_1: list[str], future_2: list[str]) -> PipelineConfig:
    write(tmp_path / "a.csv", observed(1) + future(1, future_1))
    write(tmp_path / "b.csv", observed(2) + future(2, future_2))
    return make_config(tmp_path)


def read(config: PipelineConfig) -> tuple[pd.DataFrame, list[str]]:
    files = resolve_source_files(config.source.path)
    return pd.concat([read_source_file(f) for f in files], ignore_index=True), files


def predict_check(config: PipelineConfig, scope: PredictionScope = READ) -> ValidationReport:
    """The prediction check of ``config``'s feed against the contract of the clean history."""
    raw, files = read(config)
    trained_on = validate_table(raw, contract_for(config), config.source, files).clean
    trained = derive_prediction_contract(trained_on, config, contract_for(config, True))
    trained = trained.model_copy(update={"series_quarantine_limit": 0.5})
    return validate_table(raw, trained, config.source, files, scope=scope)


def test_training_sets_the_trailing_future_rows_aside(tmp_path: Path) -> None:
    config = feed(tmp_path, ["1", "0"], ["0", "1"])
    history = observed(1)
    history[10] = f"{stamp(10)},sensor-1,,0"  # a blank target inside the history: a null
    write(tmp_path / "a.csv", history + future(1, ["1", "0"]))
    raw, files = read(config)
    report = validate_table(raw, contract_for(config), config.source, files)
    assert report.unused_future_rows == 4  # neither training rows nor quarantined nulls
    assert result(report, "not_null", "load").failed_rows == 1  # only the one in the history
    assert len(report.quarantined) == 1 and report.quarantined["_source_line"].tolist() == [12]
    assert len(report.clean) == 2 * STEPS - 1 and report.clean["load"].notna().all()
    assert report.clean["ts"].max() == pd.Timestamp(stamp(STEPS - 1))


def test_prediction_keeps_the_horizon_rows_after_each_origin(tmp_path: Path) -> None:
    report = predict_check(feed(tmp_path, ["1", "0", "1"], ["0", "1"]))  # one beyond horizon
    assert report.outcome == "pass", report.results
    assert report.future_rows == 4 and report.unused_future_rows == 1
    ahead = report.clean[report.clean["load"].isna()]
    assert ahead["ts"].tolist() == [pd.Timestamp(stamp(STEPS)), pd.Timestamp(stamp(STEPS + 1))] * 2
    assert ahead["promo"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert report.clean.groupby("sensor").size().tolist() == [6, 6]  # lookback 4 + horizon 2


def test_a_missing_future_row_fails_the_run_naming_series_and_time(tmp_path: Path) -> None:
    report = predict_check(feed(tmp_path, ["1", "0"], ["0"]))
    missing = result(report, "future_rows", "ts")
    assert report.outcome == "fail" and report.clean.empty
    assert missing.outcome == "fail" and missing.failed_rows == 1
    assert missing.examples == f"series 'sensor-2': {stamp(STEPS + 1)}"
    assert "each series needs a row for each of its 2 forecast steps" in message(report)


def test_many_missing_future_rows_show_the_first_few_and_a_count(tmp_path: Path) -> None:
    scope = PredictionScope(4, 4, 4, future_steps=3, frequency="1h")
    report = predict_check(feed(tmp_path, [], []), scope)
    missing = result(report, "future_rows", "ts")
    assert missing.failed_rows == 6
    assert missing.examples == (
        f"series 'sensor-1': {stamp(40)}, {stamp(41)}, {stamp(42)}; "
        f"series 'sensor-2': {stamp(40)}, {stamp(41)} (+1 more)"
    )


def test_a_blank_future_flag_sets_only_its_series_aside(tmp_path: Path) -> None:
    report = predict_check(feed(tmp_path, ["1", ""], ["0", "1"]))
    assert report.outcome == "quarantine"
    assert list(report.set_aside) == ["sensor-1"]
    assert report.set_aside["sensor-1"][0].startswith("not_null on 'promo': 1 row(s)")
    assert set(report.clean["sensor"]) == {"sensor-2"}


def test_future_path_rows_are_read_like_the_same_rows_of_the_source(tmp_path: Path) -> None:
    in_source = tmp_path / "in_source"
    in_source.mkdir()
    expected = predict_check(feed(in_source, ["1", "0"], ["0", "1"])).clean
    apart = tmp_path / "apart"
    apart.mkdir()
    write(apart / "a.csv", observed(1))
    write(apart / "b.csv", observed(2))
    # a row at or before the last observation is not a future row: not read
    lines = [*future(1, ["1", "0"]), *future(2, ["0", "1"]), f"{stamp(3)},sensor-1,,1"]
    write(tmp_path / "future.csv", [line.replace(",,", ",") for line in lines], "ts,sensor,promo")
    config = make_config(apart, future_path=str(tmp_path / "future.csv"))
    snapshot = snapshot_source(config.source, config.pipeline_root, with_future=True)
    raw = storage.read_parquet(snapshot.uri).to_pandas()
    trained_on = validate_table(raw, contract_for(config), config.source, snapshot.files)
    assert trained_on.unused_future_rows == 5  # training reads none of them
    trained = derive_prediction_contract(trained_on.clean, config, contract_for(config, True))
    report = validate_table(raw, trained, config.source, snapshot.files, scope=READ)
    assert report.outcome == "pass" and report.unused_future_rows == 1
    pd.testing.assert_frame_equal(report.clean, expected)


def test_future_path_needs_future_features(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="list them in `future_features`"):
        make_config(tmp_path, future_features=[], future_path=str(tmp_path / "f.csv"))


def test_the_validated_table_keeps_the_covariate_columns(tmp_path: Path) -> None:
    # the window step reads them; the schema once dropped them and training then failed
    config = make_config(tmp_path, static_features=["capacity"])
    contract = contract_for(config)
    schema = table_schema(contract, config.source, ["sensor", "ts", "load", "promo", "capacity"])
    assert schema.names == ["sensor", "ts", "load", "promo", "capacity"]
    assert str(schema.field("promo").type) == "double"
