"""Strict parsing of columns as read into the types a contract declares, before any GX rule.

Why a step of its own: Great Expectations checks the values of a typed table, but deciding
what a text value *means* (is ``"1,5"`` a number? does ``2024-03-31 02:30`` exist in
Europe/Berlin? does a naive timestamp share a table with offset ones?) must be explicit
and per row, so a bad value is reported with its line instead of being coerced silently.
Every parser returns the typed values and a mask of the rows whose text did not parse, with
a reason per row; nulls are reported separately (by the not-null rule).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
"""Texts (compared stripped and lower-cased) that mean "no value" in a numeric column."""

_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
"""A time of day followed by ``Z`` or a UTC offset (a bare date's ``-01`` is not an offset)."""


@dataclass(frozen=True)
class Parsed:
    """One column parsed: typed values, rows whose text did not parse, and why.

    values: typed, NaN/NaT where the value is null or did not parse.
    invalid: bool per row: a non-null value that does not parse as the declared type.
    reasons: per row, why it did not parse ("" where it did).
    """

    values: pd.Series
    invalid: pd.Series
    reasons: pd.Series


@dataclass(frozen=True)
class ParsedTimestamps(Parsed):
    """Timestamps in UTC, plus which rows carried an explicit UTC offset.

    has_offset: bool per non-null row: the text (or dtype) carried an offset or zone.
    unit: ``year`` or ``step`` when the column held integers (`parse_integer_time`).
    """

    has_offset: pd.Series
    unit: str | None = None


def as_text(raw: pd.Series) -> pd.Series:
    """Values as text, as a CSV would hold them: timestamps in ISO 8601, floats exactly."""
    if pd.api.types.is_string_dtype(raw.dtype) and not pd.api.types.is_object_dtype(raw.dtype):
        return raw.astype("string")

    def one(value: object) -> object:
        if isinstance(value, pd.Timestamp | dt.datetime):
            return value.isoformat()
        if value is None or value is pd.NaT or value is pd.NA:
            return None
        if isinstance(value, float | np.floating) and np.isnan(value):
            return None
        return str(value)

    return raw.map(one).astype("string")


def _text(raw: pd.Series) -> pd.Series:
    return as_text(raw).str.strip()


def _reasons(invalid: pd.Series, reason: str) -> pd.Series:
    return pd.Series(np.where(invalid.to_numpy(bool), reason, ""), index=invalid.index)


def null_text(raw: pd.Series) -> pd.Series:
    """Rows with no value: missing, blank, or a null token such as ``NaN`` or ``NA``."""
    text = _text(raw)
    return text.isna() | text.str.lower().isin(NULL_TOKENS).fillna(False).astype(bool)


def parse_numbers(raw: pd.Series, integer: bool = False) -> Parsed:
    """Parse a numeric column; ``inf``/``-inf`` parse (the finite rule reports them)."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        invalid = raw.notna()
        values = pd.Series(np.nan, index=raw.index, dtype=np.float64)
        return Parsed(values, invalid, _reasons(invalid, "a boolean, not a number"))
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        invalid = pd.Series(False, index=raw.index)
    else:
        text = _text(raw)
        blank = null_text(raw)
        values = pd.to_numeric(text.where(~blank).astype(object), errors="coerce")
        values = values.astype(np.float64)
        invalid = values.isna() & ~blank
    reasons = _reasons(invalid, "not a number")
    if integer:
        fractional = np.isfinite(values) & (values % 1 != 0)
        invalid = invalid | fractional
        reasons = reasons.where(~fractional, "not a whole number")
        values = values.where(~fractional)
    return Parsed(values, invalid.astype(bool), reasons)


def parse_text(raw: pd.Series) -> Parsed:
    """Parse an id or label column: any text; blank counts as null."""
    text = _text(raw)
    values = text.where(text.str.len() > 0)
    invalid = pd.Series(False, index=raw.index)
    return Parsed(values, invalid, _reasons(invalid, ""))


_INTEGER = re.compile(r"^[+-]?\d{1,7}$")
YEAR_RANGE = (1678, 2261)
"""Years a nanosecond timestamp can hold (pandas' datetime64[ns] range)."""


def integer_time_unit(raw: pd.Series) -> str | None:
    """``year`` or ``step`` if every present value of a time column is an integer, else None.

    Integers of up to 7 digits (an 8-digit ``20240131`` is an ISO 8601 date) are years when
    all lie in `YEAR_RANGE`, step numbers otherwise.
    """
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return None
    text = _text(raw)
    present = text[text.notna() & (text.str.len() > 0)]
    if present.empty or not present.str.match(_INTEGER).all():
        return None
    values = present.astype(np.int64)
    low, high = YEAR_RANGE
    return "year" if ((values >= low) & (values <= high)).all() else "step"


def parse_integer_time(raw: pd.Series, unit: str, timezone: str) -> ParsedTimestamps:
    """Parse an integer time column to UTC timestamps.

    ``year``: each year's Jan 1, 00:00 in ``timezone`` (a ``YS`` grid); ``step``: step ``k``
    is ``k`` seconds after the Unix epoch, UTC (a fixed grid whatever the timezone).
    `seqcast.windows.grid.report_time` maps them back.
    """
    index = raw.index
    text = _text(raw)
    blank = text.isna() | (text.str.len() == 0)
    integer = text.str.match(_INTEGER).fillna(False).astype(bool) & ~blank
    numbers = pd.Series(np.where(integer, text.where(integer, "0"), "0"), index=index)
    numbers = numbers.astype(np.int64)
    if unit == "year":
        low, high = YEAR_RANGE
        in_range = integer & (numbers >= low) & (numbers <= high)
        days = (numbers.where(in_range, 1970) - 1970).to_numpy()
        local = (np.datetime64("1970", "Y") + days).astype("datetime64[ns]")
        values = (
            pd.Series(local, index=index)
            .dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
            .dt.tz_convert("UTC")
        )
        reason = f"not a year in {low}-{high} (the range a timestamp can hold)"
        has_offset = pd.Series(False, index=index)
    elif unit == "step":
        in_range = integer
        values = pd.to_datetime(numbers.where(in_range, 0), unit="s", utc=True)
        reason = "not an integer step number"
        has_offset = in_range.copy()  # already UTC: source.timezone does not apply
    else:
        raise ValueError(f"`time_unit` must be 'year' or 'step'. Received: time_unit={unit!r}")
    values = values.where(in_range).astype("datetime64[ns, UTC]")
    invalid = ~in_range & ~blank
    return ParsedTimestamps(
        values, invalid, _reasons(invalid, reason), has_offset & ~blank, unit=unit
    )


TIMESTAMP_RANGE = (pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC"))
"""Instants a nanosecond timestamp can hold (1677-09-21 to 2262-04-11): pandas parses text
to microseconds, so a year 2300 parses, then the window step's nanosecond grid fails."""


def _within_range(parsed: ParsedTimestamps) -> ParsedTimestamps:
    """``parsed`` with instants outside `TIMESTAMP_RANGE` invalid (and NaT), with the reason."""
    low, high = TIMESTAMP_RANGE
    values = parsed.values
    outside = (values.notna() & ((values < low) | (values > high))).astype(bool)
    if not outside.any():
        return parsed
    reason = f"outside {low:%Y-%m-%d} to {high:%Y-%m-%d} UTC, the range a timestamp can hold"
    return ParsedTimestamps(
        values.where(~outside),
        parsed.invalid | outside,
        parsed.reasons.where(~outside, reason),
        parsed.has_offset,
        unit=parsed.unit,
    )


def parse_timestamps(
    raw: pd.Series, timezone: str, fmt: str | None = None, time_unit: str | None = None
) -> ParsedTimestamps:
    """Parse timestamps to UTC.

    Text with an offset (``+02:00``, ``Z``) is converted to UTC; naive text is read in
    ``timezone``. A naive local time that does not exist or is ambiguous there (a DST
    change) is invalid, not guessed. Without ``fmt`` only ISO 8601 parses, so ``01/02/2024``
    (January or February?) is invalid rather than read one way silently. An instant outside
    `TIMESTAMP_RANGE` (year 2300) is invalid too: the window step could not place it.

    Args:
        raw: the column as read (text, or datetimes from a Parquet file).
        timezone: IANA name of the zone of naive timestamps (``source.timezone``).
        fmt: a strftime format, when the source does not write ISO 8601.
        time_unit: ``year`` or ``step`` for a column of integers (`parse_integer_time`);
            None: inferred for integer columns (`integer_time_unit`) unless ``fmt`` is set.
    """
    unit = time_unit or (integer_time_unit(raw) if fmt is None else None)
    if unit is not None:
        return parse_integer_time(raw, unit, timezone)
    index = raw.index
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        aware = getattr(raw.dtype, "tz", None) is not None
        has_offset = pd.Series(aware, index=index) & raw.notna()
        local = raw if aware else raw.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        values = local.dt.tz_convert("UTC")
        invalid = values.isna() & raw.notna()
        reasons = _reasons(invalid, f"not a valid local time in {timezone} (DST change)")
        return _within_range(ParsedTimestamps(values, invalid, reasons, has_offset))
    text = _text(raw)
    blank = text.isna() | (text.str.len() == 0)
    offset = text.str.contains(_OFFSET).fillna(False).astype(bool) & ~blank
    fmt = fmt or "ISO8601"
    with_offset = pd.to_datetime(text.where(offset), format=fmt, utc=True, errors="coerce")
    naive = pd.to_datetime(text.where(~offset & ~blank), format=fmt, errors="coerce")
    if getattr(naive.dtype, "tz", None) is None:
        localized = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    else:  # a custom format with %z gives offsets the regex did not recognise
        localized = naive
    values = with_offset.where(offset, localized.dt.tz_convert("UTC"))
    values = pd.to_datetime(values, utc=True)
    invalid = values.isna() & ~blank
    unparsed = (offset & with_offset.isna()) | (~offset & ~blank & naive.isna())
    expected = "ISO 8601" if fmt == "ISO8601" else f"format {fmt!r}"
    reasons = pd.Series(
        np.where(
            ~invalid.to_numpy(bool),
            "",
            np.where(
                unparsed.to_numpy(bool),
                f"not a timestamp in {expected}",
                f"not a valid local time in {timezone} (DST change)",
            ),
        ),
        index=index,
    )
    return _within_range(ParsedTimestamps(values, invalid.astype(bool), reasons, offset))
