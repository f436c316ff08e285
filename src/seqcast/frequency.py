"""Time steps: fixed durations and calendar steps (months, quarters, years, weeks, business days).

A fixed step (``15min``, ``1h``, ``1D``) is a number of nanoseconds, and a series' grid
starts at its first timestamp. A calendar step is a pandas offset alias read as pandas
reads it (``MS`` month start, ``ME`` month end, ``QS``/``QE``, ``YS``/``YE``, ``W-SUN``,
``B``): its steps have no fixed length (January has 31 days, February 28 or 29), so each
timestamp is given an integer *ordinal* (months, quarters, years, weeks or business days
since the epoch, counted in the source's timezone) and gaps, splits and windows work on
those integers. A timestamp is on a calendar grid when its local date is the step's
anchor (the first or last day of its month, a Sunday, a weekday) and its local time of day
is the series' own.

Aliases that pandas reads otherwise than a user likely meant are refused with the right
one: ``M`` (deprecated), ``1MS`` (one *millisecond* as a duration), ``H``, ``T``, ...

This module is top level (beside config) because the config, the contracts and the window
grid all read steps the same way, so validation and windowing never disagree.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

NS_PER_SECOND = 1_000_000_000
TIME_UNIT = "seqcast.time_unit"
"""Key of an integer time column's unit (``year``/``step``) in the validated table's Parquet
metadata and a validated frame's ``attrs``: validation infers it, windowing reads it."""
NS_PER_DAY = 86_400 * NS_PER_SECOND
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_EPOCH_DAY = np.datetime64("1970-01-01", "D")

CALENDAR_ALIASES = ("MS", "ME", "QS", "QE", "YS", "YE", "W-SUN", "B")
"""The calendar steps supported (quarters, years and weeks also with their anchors,
e.g. ``QS-FEB``, ``YE-JUN``, ``W-MON``)."""

_REFUSED = {
    "M": "'ME' (month end) or 'MS' (month start)",
    "Y": "'YE' (year end) or 'YS' (year start)",
    "y": "'YE' (year end) or 'YS' (year start)",
    "A": "'YE' (year end) or 'YS' (year start)",
    "AS": "'YS' (year start)",
    "Q": "'QE' (quarter end) or 'QS' (quarter start)",
    "H": "'h' (hours)",
    "T": "'min' (minutes)",
    "S": "'s' (seconds)",
    "L": "'ms' (milliseconds)",
    "U": "'us' (microseconds)",
    "N": "'ns' (nanoseconds)",
    "d": "'D' (days)",
    "BM": "'BME' (business month end)",
    "BQ": "'BQE'",
    "BA": "'BYE'",
    "BY": "'BYE'",
    "SM": "'SME'",
}
"""Units pandas deprecates or no longer reads, and the alias that says what was meant."""

_ALIAS = re.compile(r"^\s*(?P<n>\d+)?\s*(?P<unit>[A-Za-z]+)(?P<anchor>-[A-Za-z]{3})?\s*$")


@dataclass(frozen=True)
class Frequency:
    """A series' time step.

    alias: the canonical pandas alias (``1h``, ``MS``, ``QE-DEC``, ``W-SUN``, ``B``).
    nanos: the fixed step in nanoseconds; None for a calendar step.
    """

    alias: str
    nanos: int | None = None

    @property
    def calendar(self) -> bool:
        return self.nanos is None

    @property
    def offset(self) -> pd.DateOffset:
        return to_offset(self.alias)

    @property
    def multiple(self) -> int:
        """Calendar units per step (2 for ``2QS``); 1 for a fixed step."""
        return 1 if self.nanos is not None else int(self.offset.n)

    def ordinals(
        self, stamps_ns: np.ndarray, timezone: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calendar units since the epoch of UTC ``stamps_ns`` (int64 ns), in ``timezone``.

        Returns:
            (ordinal, time_of_day, on_anchor): int64 units since the epoch (the period that
            holds each local date), int64 local nanoseconds since midnight, and whether
            each local date is its period's anchor (month start for ``MS``, ...).
        """
        if self.nanos is not None:
            stamps = np.asarray(stamps_ns, np.int64)
            return stamps // self.nanos, stamps % self.nanos, stamps % self.nanos == 0
        local = _local(stamps_ns, timezone)
        dates = local.normalize()
        time_of_day = (local - dates).to_numpy("timedelta64[ns]").astype(np.int64)
        kind, begin = _calendar_kind(self.offset)
        if kind == "B":
            days = dates.to_numpy("datetime64[D]")
            ordinal = np.busday_count(_EPOCH_DAY, days).astype(np.int64)
            return ordinal, time_of_day, np.is_busday(days)
        ordinal = dates.to_period(kind).asi8.astype(np.int64)
        anchors = _anchor_dates(ordinal, kind, begin)
        return ordinal, time_of_day, dates.as_unit("ns").asi8 == anchors

    def stamps(
        self, ordinals: np.ndarray, time_of_day: int | np.ndarray, timezone: str
    ) -> np.ndarray:
        """UTC int64 ns of the steps at calendar ``ordinals``, at local ``time_of_day`` ns."""
        ordinals = np.asarray(ordinals, np.int64)
        if self.nanos is not None:
            return ordinals * self.nanos + time_of_day
        kind, begin = _calendar_kind(self.offset)
        if kind == "B":
            days = np.busday_offset(_EPOCH_DAY, ordinals, roll="forward")
            anchors = days.astype("datetime64[ns]").astype(np.int64)
        else:
            anchors = _anchor_dates(ordinals, kind, begin)
        local = pd.DatetimeIndex(anchors + time_of_day, dtype="datetime64[ns]")
        if timezone != "UTC":
            local = local.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
            return local.tz_convert("UTC").as_unit("ns").asi8
        return local.asi8


def steps_after(
    origins: np.ndarray, steps: np.ndarray, frequency: Frequency, timezone: str
) -> np.ndarray:
    """UTC int64 ns of ``steps`` grid steps after each origin: (origins, steps).

    Months, quarters and years advance on the calendar (in ``timezone``): one month after
    2026-01-31 (``ME``) is 2026-02-28, two months 2026-03-31. Validation (the future rows
    a forecast reads) and the window grid (`seqcast.windows.grid.future_stamps`) both use
    it, so they agree on which timestamps follow a series' last one.

    Args:
        origins: (n,) UTC int64 ns, each on its series' grid.
        steps: (k,) int step counts, e.g. ``1..horizon``.
    """
    origins = np.asarray(origins, np.int64)
    steps = np.asarray(steps, np.int64)
    if frequency.nanos is not None:
        return origins[:, None] + steps[None, :] * frequency.nanos
    ordinal, time_of_day, _ = frequency.ordinals(origins, timezone)
    ahead = ordinal[:, None] + steps[None, :] * frequency.multiple  # (n, k)
    tod = np.broadcast_to(time_of_day[:, None], ahead.shape)
    return frequency.stamps(ahead.reshape(-1), tod.reshape(-1), timezone).reshape(ahead.shape)


def _local(stamps_ns: np.ndarray, timezone: str) -> pd.DatetimeIndex:
    """UTC ``stamps_ns`` as naive local wall times in ``timezone``."""
    utc = pd.DatetimeIndex(np.asarray(stamps_ns, np.int64).astype("datetime64[ns]"), tz="UTC")
    return utc.tz_convert(timezone).tz_localize(None)


def _calendar_kind(offset: pd.DateOffset) -> tuple[str, bool]:
    """The pandas period frequency whose ordinals count this offset's steps, and whether
    the anchor is the period's first day (else its last)."""
    if type(offset) is pd.offsets.BusinessDay and not offset.offset:
        return "B", True
    if isinstance(offset, pd.offsets.MonthBegin):
        return "M", True
    if isinstance(offset, pd.offsets.MonthEnd):
        return "M", False
    if isinstance(offset, pd.offsets.QuarterBegin):
        return f"Q-{_MONTHS[(offset.startingMonth - 2) % 12]}", True
    if isinstance(offset, pd.offsets.QuarterEnd):
        return f"Q-{_MONTHS[offset.startingMonth - 1]}", False
    if isinstance(offset, pd.offsets.YearBegin):
        return f"Y-{_MONTHS[(offset.month - 2) % 12]}", True
    if isinstance(offset, pd.offsets.YearEnd):
        return f"Y-{_MONTHS[offset.month - 1]}", False
    if isinstance(offset, pd.offsets.Week) and offset.weekday is not None:
        return f"W-{_DAYS[offset.weekday]}", False
    raise ValueError(f"unsupported calendar step {offset.freqstr!r}")


def _anchor_dates(ordinals: np.ndarray, kind: str, begin: bool) -> np.ndarray:
    """int64 ns (naive, midnight) of each period's anchor day."""
    periods = pd.PeriodIndex.from_ordinals(ordinals, freq=kind)
    days = periods.start_time if begin else periods.end_time.normalize()
    return days.as_unit("ns").asi8


def _refuse(text: str, hint: str) -> ValueError:
    return ValueError(
        f"`frequency` {text!r} is not read as you likely meant: use {hint}. "
        f"Received: frequency={text!r}"
    )


def parse_frequency(text: str) -> Frequency:
    """Read a frequency alias, as pandas means it; refuse ambiguous or deprecated ones.

    Fixed durations (``15min``, ``1h``, ``1D``, ``90s``) keep a fixed nanosecond step;
    calendar aliases (`CALENDAR_ALIASES`) become calendar steps.

    Raises:
        ValueError: the alias is unknown, deprecated, ambiguous, not positive or a
            calendar step without support; the message names the alias to use.
    """
    match = _ALIAS.match(text)
    if match:
        unit, count = match["unit"], match["n"]
        if unit in _REFUSED:
            raise _refuse(text, _REFUSED[unit])
        if unit == "MS" and count is not None:
            raise _refuse(
                text,
                f"'MS' for month starts (pandas reads {text!r} as {count} millisecond(s) in "
                f"a duration) or '{count}ms' for milliseconds",
            )
        if count is not None and int(count) == 0:
            raise ValueError(f"`frequency` must be positive. Received: frequency={text!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            offset = to_offset(text.strip())
    except (ValueError, TypeError, Warning):
        return _fixed_duration(text)
    if offset.n <= 0:
        raise ValueError(f"`frequency` must be positive. Received: frequency={text!r}")
    if isinstance(offset, pd.offsets.Tick | pd.offsets.Day):
        return Frequency(alias=offset.freqstr, nanos=int(pd.Timedelta(offset).value))
    try:
        _calendar_kind(offset)
    except ValueError:
        raise ValueError(
            f"`frequency` {text!r} ({type(offset).__name__}) is not a supported calendar step; "
            f"use a fixed duration such as '1h' or '1D', or one of {list(CALENDAR_ALIASES)} "
            f"(quarters, years and weeks with an anchor such as 'QS-FEB' or 'W-MON'). "
            f"Received: frequency={text!r}"
        ) from None
    return Frequency(alias=offset.freqstr)


def _fixed_duration(text: str) -> Frequency:
    """A duration pandas reads only as a timedelta (``1 day``, ``1h30min``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            step = pd.Timedelta(text)
    except Warning as warning:
        raise ValueError(
            f"`frequency` {text!r} is deprecated in pandas: {warning}. Received: frequency={text!r}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"`frequency` must be a duration such as '1h', '15min' or '1D', or a calendar "
            f"step such as 'MS', 'QE', 'YS', 'W-SUN' or 'B'. Received: frequency={text!r}"
        ) from exc
    if step <= pd.Timedelta(0):
        raise ValueError(f"`frequency` must be positive. Received: frequency={text!r}")
    return Frequency(alias=text.strip(), nanos=int(step.value))


def fixed(nanos: int) -> Frequency:
    """The fixed step of ``nanos`` nanoseconds, with its short alias (``3600 s`` -> ``1h``)."""
    return Frequency(alias=duration_alias(nanos), nanos=int(nanos))


def duration_alias(nanos: int) -> str:
    """``3_600_000_000_000`` -> ``1h``: the shortest whole-unit alias of a duration."""
    for unit, size in (
        ("D", NS_PER_DAY),
        ("h", 3600 * NS_PER_SECOND),
        ("min", 60 * NS_PER_SECOND),
        ("s", NS_PER_SECOND),
        ("ms", 1_000_000),
        ("us", 1_000),
    ):
        if nanos >= size and nanos % size == 0:
            return f"{nanos // size}{unit}"
    return f"{nanos}ns"


# The usual step's length in days -> the calendar steps it may be, most likely first.
_CALENDAR_GUESSES: tuple[tuple[range, tuple[str, ...]], ...] = (
    (range(28, 32), ("MS", "ME")),
    (range(89, 93), ("QS", "QE")),
    (range(365, 367), ("YS", "YE")),
)


def infer_frequency(
    usual_ns: int | None, sample: Iterable[np.ndarray], timezone: str
) -> Frequency | None:
    """The step of series whose most common step is ``usual_ns``, calendar-aware.

    A usual step of 28-31 days is a month, 89-92 days a quarter, 365-366 days a year: the
    calendar step whose anchor every sampled timestamp sits on (month start or end, and
    for quarters and years the anchor month of the first stamp). Daily steps over
    weekdays only, with weekends skipped, are business days. Anything else is the fixed
    ``usual_ns``.

    Args:
        usual_ns: the most common positive step between consecutive stamps of a series.
        sample: some series' UTC int64 ns stamps, sorted (enough to see the anchors).
        timezone: the zone calendar dates are read in (``source.timezone``).
    """
    if usual_ns is None or usual_ns <= 0:
        return None
    stamps = [np.asarray(s, np.int64) for s in sample if len(s)]
    days = int(round(usual_ns / NS_PER_DAY))
    # A local calendar day is 23-25 h long in UTC across a DST change.
    if not stamps or days == 0 or abs(usual_ns - days * NS_PER_DAY) > 3600 * NS_PER_SECOND:
        return fixed(usual_ns)
    for lengths, aliases in _CALENDAR_GUESSES:
        if days not in lengths:
            continue
        for alias in aliases:
            found = _fits(_anchored(alias, int(stamps[0][0]), timezone), stamps, timezone)
            if found is not None:
                return found
        return fixed(usual_ns)
    if days == 1:
        business = _fits(Frequency("B"), stamps, timezone)
        weekends = any(np.any(np.diff(s) == 3 * NS_PER_DAY) for s in stamps)
        if business is not None and weekends:
            return business
    return fixed(usual_ns)


def _anchored(alias: str, first_ns: int, timezone: str) -> Frequency:
    """``QS``/``QE``/``YS``/``YE`` anchored on the month of the first stamp."""
    if alias in ("MS", "ME"):
        return Frequency(alias)
    month = int(_local(np.asarray([first_ns]), timezone).month[0])
    if alias == "QS":
        return Frequency(f"QS-{_MONTHS[(month - 1) % 3]}")
    if alias == "QE":
        return Frequency(f"QE-{_MONTHS[(month - 1) % 3 + 9]}")
    if alias == "YS":
        return Frequency(f"YS-{_MONTHS[month - 1]}")
    return Frequency(f"YE-{_MONTHS[month - 1]}")


def _fits(frequency: Frequency, sample: list[np.ndarray], timezone: str) -> Frequency | None:
    """``frequency`` if every sampled stamp is on its grid, each series at one time of day."""
    for stamps in sample:
        _, time_of_day, on_anchor = frequency.ordinals(stamps, timezone)
        if not on_anchor.all() or np.any(time_of_day != time_of_day[0]):
            return None
    return frequency


def default_season(frequency: str | None) -> int | None:
    """Steps in the natural season of a frequency: the seasonal-naive baseline's lag.

    ``MS``/``ME`` 12, ``QS``/``QE`` 4, weeks 52, ``B`` 5, days 7, hours 24, minutes and
    seconds the steps in a day; years (and anything else) None: no season.
    """
    if frequency is None:
        return None
    step = parse_frequency(frequency)
    if step.nanos is None:
        kind, _ = _calendar_kind(step.offset)
        units = {"M": 12, "Q": 4, "W": 52, "B": 5}.get(kind.split("-")[0])
        return units // step.multiple if units and units % step.multiple == 0 else None
    if step.nanos % NS_PER_DAY == 0:
        return 7 if step.nanos == NS_PER_DAY else None
    if NS_PER_DAY % step.nanos == 0:
        return NS_PER_DAY // step.nanos
    return None
