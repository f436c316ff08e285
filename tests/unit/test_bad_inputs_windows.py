"""Bad inputs of issue 13 that passed validation and broke the window step late: each is
now caught before a window build is published, naming the file, line or column and rows.

Through the library as the training flow runs it: ingest and validate (`check`), write the
clean table as the validate task does, then the window step (`build_or_reuse`). No Prefect.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from seqcast.config import PipelineConfig, series_column
from seqcast.data.contracts import contract_for
from seqcast.data.validation import QUARANTINE_REASON, ValidationReport, table_schema
from seqcast.io import storage
from seqcast.windows.step import WindowsBuilt, build_or_reuse
from tests.unit.test_bad_inputs import STEPS, check, make_config, result, two_sensors


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
