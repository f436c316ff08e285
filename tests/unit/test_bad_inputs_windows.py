"""Bad inputs of issue 13 that passed validation and broke the window step late: each is
now caught before a window build is published, naming the file, line or column and rows.

Through the library as the training flow runs it: ingest and validate (`check`), write the
clean table as the validate task does, then the window step (`build_or_reuse`). No Prefect.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from seqcast.config import PipelineConfig, series_column
from seqcast.data.contracts import contract_for
from seqcast.data.validation import QUARANTINE_REASON, ValidationReport, table_schema
from seqcast.errors import DataContractError
from seqcast.io import storage
from seqcast.windows.build import check_statistics
from seqcast.windows.scaling import Scaler, Stats
from seqcast.windows.step import WindowsBuilt, build_or_reuse
from tests.unit.test_bad_inputs import CONTRACT, STEPS, check, make_config, result, two_sensors


def windows(config: PipelineConfig, report: ValidationReport) -> WindowsBuilt:
    """The window step over the clean rows, written as `tasks.validate` writes them."""
    uri = storage.join(config.pipeline_root, "validated", "data.parquet")
    columns = list(report.clean.columns)
    schema = table_schema(contract_for(config), config.source, columns, report.time_unit)
    table = pa.Table.from_pandas(report.clean, schema=schema, preserve_index=False)
    storage.write_parquet(table, uri)
    return build_or_reuse(config, uri, "fp", series_column(config.source), code="test")


def test_timestamps_after_2262_are_quarantined_and_the_windows_build(tmp_path: Path) -> None:
    # Issue 13 #10: pandas parses year 2300 (to microseconds), so it passed validation and
    # the window step failed with ArrowInvalid "out of bounds timestamp", naming no row.
    two_sensors(
        tmp_path, lambda lines: lines.__setitem__(39, "2300-01-01T00:00:00+00:00" + lines[39][25:])
    )
    config = make_config(tmp_path)
    report = check(config)
    bad = result(report, "timestamp", "ts")
    assert report.outcome == "quarantine" and bad.failed_rows == 1
    assert bad.examples.startswith("a.csv:41 ts='2300-01-01T00:00:00+00:00'")
    assert "the range a timestamp can hold" in bad.reason
    assert "2262-04-11" in report.quarantined[QUARANTINE_REASON].iloc[0]
    assert len(report.clean) == 2 * STEPS - 1
    built = windows(config, report)
    assert storage.exists(built.uri)


def test_extreme_finite_values_stop_the_window_step_before_publishing(tmp_path: Path) -> None:
    # Issue 13 #11: 1e308 passes a derived contract (no range); the build was published with
    # Infinity/NaN in scaler.json and the run failed late with learning-rate advice.
    two_sensors(tmp_path, lambda lines: lines.__setitem__(5, lines[5].replace("115.5", "1e308")))
    columns = {**CONTRACT["columns"], "load": {"type": "float"}}  # as derived: no min/max
    config = make_config(tmp_path, columns=columns)
    report = check(config)
    assert report.outcome in ("pass", "warn")  # a finite number: validation keeps it
    with pytest.raises(DataContractError) as raised:
        windows(config, report)
    text = str(raised.value)
    assert "column 'load' of series 'sensor-1' has 1 row(s)" in text
    assert "2024-01-01T05:00:00+00:00 load=1e+308" in text
    assert "`max`/`min` in the contract" in text
    builds = tmp_path / "data/feed/windows"
    assert not list(builds.rglob("scaler.json")) and not list(builds.rglob("manifest.json"))


def test_statistics_that_overflow_are_refused_naming_the_column() -> None:
    # The last guard before publishing: values each under the float32 limit whose statistics
    # still overflow (a hand-made scaler here) never reach scaler.json.
    scaler = Scaler(
        kind="series",
        columns=["load", "temperature"],
        global_stats=Stats([1.0, 2.0], [1.0, 1.0]),
        series_stats={"sensor-1": Stats([1.0, 2.0], [1.0, float("inf")])},
    )
    with pytest.raises(DataContractError, match=r"column 'temperature' \(sensor-1\)"):
        check_statistics(scaler)
