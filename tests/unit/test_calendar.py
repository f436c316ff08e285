"""Calendar steps and integer time: months, quarters, years, weeks and business days are
one grid step each however many days they hold, from parsing the alias through gaps,
splits, backtest periods and forecast timestamps."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from seqcast.config import config_from_dict
from seqcast.data.contracts import ColumnRule, Contract, derive_contract, usual_frequency
from seqcast.data.parsing import parse_timestamps
from seqcast.data.validation import validate_table
from seqcast.errors import ConfigError, DataContractError
from seqcast.frequency import default_season, parse_frequency
from seqcast.modeling.backtest import plan_folds
from seqcast.windows.build import build_windows
from seqcast.windows.grid import (
    GridStep,
    SeriesRows,
    StepCounter,
    future_stamps,
    grid_step,
    report_time,
    to_grid,
)
from seqcast.windows.windowing import SPLITS, grid_split_bounds
from tests.conftest import forecast_layout


def ns(*stamps: str, tz: str = "UTC") -> np.ndarray:
    return pd.DatetimeIndex(list(stamps), tz=tz).tz_convert("UTC").as_unit("ns").asi8


def dates(stamps_ns: np.ndarray) -> list[str]:
    return [str(d.date()) for d in pd.DatetimeIndex(np.asarray(stamps_ns).ravel(), tz="UTC")]


def rows(stamps: np.ndarray) -> SeriesRows:
    n = len(stamps)
    values = np.arange(n, dtype=np.float64)[:, None]
    empty = np.zeros((n, 0))
    return SeriesRows("s", np.asarray(stamps, np.int64), values, None, empty, empty)


def step(alias: str, tz: str = "UTC") -> GridStep:
    return grid_step(alias, None, tz)


@pytest.mark.parametrize(
    ("alias", "canonical", "calendar"),
    [
        ("MS", "MS", True),
        ("ME", "ME", True),
        ("QS", "QS-JAN", True),
        ("QE", "QE-DEC", True),
        ("YS", "YS-JAN", True),
        ("YE-JUN", "YE-JUN", True),
        ("W", "W-SUN", True),
        ("W-MON", "W-MON", True),
        ("B", "B", True),
        ("1h", "h", False),
        ("15min", "15min", False),
        ("1D", "D", False),
        ("1 day", "1 day", False),
    ],
)
def test_aliases_read_as_pandas_means_them(alias: str, canonical: str, calendar: bool) -> None:
    found = parse_frequency(alias)
    assert (found.alias, found.calendar) == (canonical, calendar)


@pytest.mark.parametrize(
    ("alias", "hint"),
    [
        ("M", "'ME' (month end) or 'MS'"),
        ("1M", "'ME' (month end) or 'MS'"),
        ("1MS", "'1ms' for milliseconds"),
        ("Y", "'YE' (year end) or 'YS'"),
        ("1Y", "'YE' (year end) or 'YS'"),
        ("A", "'YE' (year end) or 'YS'"),
        ("Q", "'QE' (quarter end) or 'QS'"),
        ("H", "'h'"),
        ("15T", "'min'"),
        ("SMS", "not a supported calendar step"),
        ("hourly", "must be a duration such as '1h'"),
        ("0h", "must be positive"),
    ],
)
def test_misleading_aliases_are_refused_naming_the_right_one(alias: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_frequency(alias)
    source = {"path": "u", "target": ["y"], "frequency": alias}
    with pytest.raises(ConfigError, match="frequency"):
        config_from_dict({"name": "x", "source": source})


def test_month_ends_are_one_step_each_leap_february_included() -> None:
    grid = to_grid(rows(ns("2023-12-31", "2024-01-31", "2024-03-31")), step("ME"), 1, "linear")
    assert grid.position.tolist() == [0, 1, 2, 3]
    assert dates(grid.rows.stamps) == ["2023-12-31", "2024-01-31", "2024-02-29", "2024-03-31"]
    assert grid.filled.tolist() == [False, False, True, False]
    np.testing.assert_allclose(grid.rows.values[:, 0], [0, 1, 1.5, 2])


def test_month_starts_gap_ends_a_run_and_off_grid_dates_are_refused() -> None:
    grid = to_grid(
        rows(ns("2024-01-01", "2024-02-01", "2024-05-01", "2024-06-01")), step("MS"), 1, "linear"
    )
    assert grid.position.tolist() == [0, 1, 4, 5] and grid.run.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataContractError, match=r"1 timestamp\(s\) are off its MS"):
        to_grid(rows(ns("2024-01-01", "2024-01-31")), step("MS"), 0, "linear")


def test_quarters_business_days_and_anchored_weeks() -> None:
    quarters = to_grid(rows(ns("2024-01-01", "2024-04-01", "2024-10-01")), step("QS"), 0, "ffill")
    assert quarters.position.tolist() == [0, 1, 3]
    # Friday -> Monday is one business day; a Saturday is off the grid.
    business = to_grid(rows(ns("2024-01-04", "2024-01-05", "2024-01-08")), step("B"), 0, "ffill")
    assert business.position.tolist() == [0, 1, 2] and business.run.tolist() == [0, 0, 0]
    with pytest.raises(DataContractError, match="off its B"):
        to_grid(rows(ns("2024-01-05", "2024-01-06")), step("B"), 0, "ffill")
    weeks = to_grid(rows(ns("2024-01-01", "2024-01-08", "2024-01-22")), step("W-MON"), 1, "ffill")
    assert dates(weeks.rows.stamps)[2] == "2024-01-15" and weeks.filled.tolist()[2]
    with pytest.raises(DataContractError, match="off its W-SUN"):
        to_grid(rows(ns("2024-01-01", "2024-01-08")), step("W"), 0, "ffill")


def test_months_are_local_calendar_months() -> None:
    # Berlin month starts are 23:00 or 22:00 UTC the day before: still one month a step.
    local = ns("2024-02-01", "2024-03-01", "2024-04-01", tz="Europe/Berlin")
    grid = to_grid(rows(local), step("MS", "Europe/Berlin"), 0, "ffill")
    assert grid.position.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("freq", "tz", "expected"),
    [
        ("MS", "UTC", "MS"),
        ("ME", "UTC", "ME"),
        ("MS", "Europe/Berlin", "MS"),
        ("QE-NOV", "UTC", "QE-NOV"),
        ("QS", "UTC", "QS-JAN"),
        ("YS", "UTC", "YS-JAN"),
        ("B", "UTC", "B"),
        ("h", "UTC", "1h"),
        ("W-WED", "UTC", "7D"),
    ],
)
def test_frequency_is_inferred_on_the_calendar(freq: str, tz: str, expected: str) -> None:
    index = pd.date_range("2019-11-30", periods=40, freq=freq, tz=tz)
    counter = StepCounter()
    counter.add(index.tz_convert("UTC").as_unit("ns").asi8)
    found = counter.frequency(tz)
    assert found is not None and found.alias == expected
    if found.calendar:  # a drafted contract writes the same step
        stamps = pd.Series(index)
        assert usual_frequency(stamps, pd.Series("a", index=stamps.index), tz) == expected


def test_forecast_stamps_after_a_month_end_are_the_next_month_ends() -> None:
    layout = dataclasses.replace(forecast_layout(4, 3), frequency="ME")
    ahead = future_stamps(ns("2026-01-31", "2024-01-31"), np.arange(1, 4), layout)
    assert ahead.shape == (2, 3)
    assert dates(ahead[0]) == ["2026-02-28", "2026-03-31", "2026-04-30"]
    assert dates(ahead[1]) == ["2024-02-29", "2024-03-31", "2024-04-30"]
    # a layout saved before calendar steps keeps its fixed step
    hourly = forecast_layout(4, 3)
    assert (
        future_stamps(ns("2026-01-31"), np.arange(1, 3), hourly) - ns("2026-01-31")
    ).tolist() == [[3600 * 10**9, 7200 * 10**9]]


def test_time_split_and_backtest_periods_on_calendar_grids() -> None:
    split = config_from_dict(
        {
            "name": "x",
            "source": {"path": "u", "target": ["y"]},
            "split": {"by": "time", "test_from": "2024-06-15T00:00:00Z", "val": 0.25},
        }
    ).split
    # month ends from 2024-01-31: step 5 is 2024-06-30, the first on or after June 15
    assert grid_split_bounds(12, int(ns("2024-01-31")[0]), step("ME"), split) == (4, 5)
    monthly = step("MS")
    folds = plan_folds(int(ns("2025-12-01")[0]), monthly, folds=2, steps=3)
    assert [(str(f.test_from.date()), str(f.until.date())) for f in folds] == [
        ("2025-07-01", "2025-10-01"),
        ("2025-10-01", "2026-01-01"),
    ]
    # the last month not yet whole: the period ends before it
    assert str(plan_folds(int(ns("2025-11-01")[0]), monthly, 1, 3)[0].until.date()) == "2025-10-01"


def test_year_column_of_integers_parses_and_reports_back() -> None:
    parsed = parse_timestamps(pd.Series(["1700", "1701", "", "1703"]), "UTC")
    assert parsed.unit == "year" and not parsed.invalid.any()
    assert dates(pd.DatetimeIndex(parsed.values.dropna()).as_unit("ns").asi8) == [
        "1700-01-01",
        "1701-01-01",
        "1703-01-01",
    ]
    steps = parse_timestamps(pd.Series([3, 4, 5]), "Europe/Berlin")
    assert steps.unit == "step" and steps.has_offset.all()
    bad = parse_timestamps(pd.Series(["1700", "99999"]), "UTC", time_unit="year")
    assert bad.invalid.tolist() == [False, True] and "not a year" in bad.reasons[1]
    layout = dataclasses.replace(forecast_layout(2, 2), frequency="YS", time_unit="year")
    ahead = future_stamps(ns("1799-01-01"), np.arange(1, 3), layout)
    assert report_time(ahead.ravel(), layout).tolist() == [1800, 1801]


def yearly_config(**source: object) -> object:
    return config_from_dict(
        {
            "name": "years",
            "source": {"path": "u", "timestamp": "year", "target": ["y"], **source},
            "window": {"lookback": 3, "horizon": 2, "normalize": "none"},
            "split": {"by": "time", "val": 0.2, "test": 0.2},
        }
    )


def test_integer_years_validate_and_window_on_a_yearly_grid() -> None:
    raw = pd.DataFrame({"year": [str(y) for y in range(1700, 1740)], "y": list(range(40))})
    raw["_source_file"], raw["_source_line"] = "y.csv", range(2, 42)
    config = yearly_config()
    report = validate_table(raw, derive_contract(config), config.source, ["y.csv"])
    assert report.outcome == "pass" and report.time_unit == "year"
    clean = report.clean.assign(__series__="s")
    windows, _, layout = build_windows(clean, config, "__series__")
    assert (layout.frequency, layout.time_unit) == ("YS-JAN", "year")
    assert sum(len(windows[s]) for s in SPLITS) == 40 - 5 + 1 - 2  # two straddle a boundary
    origins = pd.DatetimeIndex(windows["train"].origin)
    assert (origins.month == 1).all() and (origins.day == 1).all()


def test_contract_frequency_accepts_calendar_steps_and_checks_the_grid() -> None:
    stamps = pd.date_range("2020-01-01", periods=24, freq="MS")
    raw = pd.DataFrame({"ts": stamps.strftime("%Y-%m-%d"), "y": np.arange(24.0).astype(str)})
    raw["_source_file"], raw["_source_line"] = "m.csv", range(2, 26)
    columns = {"ts": ColumnRule(type="timestamp"), "y": ColumnRule(type="float")}
    source = yearly_config().source.model_copy(update={"timestamp": "ts"})
    good = Contract(name="m", columns=columns, frequency="MS")
    assert validate_table(raw, good, source, ["m.csv"]).outcome == "pass"
    wrong = Contract(name="m", columns=columns, frequency="ME")
    report = validate_table(raw, wrong, source, ["m.csv"])
    failed = [r for r in report.results if r.rule == "frequency"]
    assert report.outcome == "fail" and "24 timestamp(s) off the grid" in failed[0].examples
    with pytest.raises(ValueError, match="'ME' \\(month end\\) or 'MS'"):
        Contract(name="m", columns=columns, frequency="M")


def test_monthly_series_windows_without_a_configured_frequency() -> None:
    index = pd.date_range("2020-01-31", periods=36, freq="ME")
    frame = pd.DataFrame({"id": "a", "ts": index.tz_localize("UTC"), "y": np.arange(36.0)})
    config = config_from_dict(
        {
            "name": "m",
            "source": {"path": "u", "series_id": "id", "target": ["y"]},
            "window": {"lookback": 4, "horizon": 2, "normalize": "none"},
        }
    )
    windows, _, layout = build_windows(frame, config, "id")
    assert layout.frequency == "ME" and 28 * 86400 < layout.step_seconds < 31 * 86400
    # every window is 6 consecutive months: targets follow inputs by exactly one month
    x, y = windows["train"].x[..., 0], windows["train"].y[..., 0]
    np.testing.assert_array_equal(y[:, 0], x[:, -1] + 1)


def test_default_season() -> None:
    assert [default_season(f) for f in ("MS", "ME", "QS", "QE", "W-SUN", "B", "D", "h")] == [
        12,
        12,
        4,
        4,
        52,
        5,
        7,
        24,
    ]
    assert default_season("YS") is None and default_season("YE") is None
    assert default_season(None) is None
