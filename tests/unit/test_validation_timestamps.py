"""Timestamps are checked in one vectorised parse; GX's slow per-value rule runs only to name
the rows that fail it."""

from __future__ import annotations

import great_expectations as gx
import pandas as pd
import pytest

from seqcast.contracts import Contract
from seqcast.errors import DataContractError
from seqcast.validation import build_suite, raise_on_failures, run_suite

CONTRACT = Contract.model_validate(
    {"name": "t", "columns": {"ts": {"type": "timestamp"}, "y": {"type": "float"}}}
)


def frame(stamps: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"ts": stamps, "y": range(len(stamps)), "_source_file": "a.csv", "_source_line": 2}
    )


def rules(data: pd.DataFrame) -> set[str]:
    gx.get_context(mode="ephemeral")  # GX builds suites only inside a context
    return {e.expectation_type for e in build_suite(CONTRACT, data).expectations}


def test_parseable_timestamps_skip_the_per_value_rule() -> None:
    good = frame(["2024-01-01T00:00:00+00:00", "2024-01-01 01:00", "2024-01-02"])
    assert "expect_column_values_to_be_dateutil_parseable" not in rules(good)
    raise_on_failures(run_suite(good, CONTRACT), ["a.csv"])


def test_a_bad_timestamp_is_still_named_by_row() -> None:
    bad = frame(["2024-01-01T00:00:00+00:00", "not a time", "2024-01-02"])
    assert "expect_column_values_to_be_dateutil_parseable" in rules(bad)
    with pytest.raises(DataContractError, match=r"column 'ts'.*\n.*'not a time'"):
        raise_on_failures(run_suite(bad, CONTRACT), ["a.csv"])
