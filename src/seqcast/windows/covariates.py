"""Calendar features generated from timestamps: known-future covariates for free.

Each feature is a sin/cos pair on its cycle, so 23:00 sits next to 00:00 and Sunday next
to Monday. They are computed in the source's timezone (load peaks at local hours, not
UTC ones) and, being known for any future time, are given to the model for the forecast
steps; prediction computes them for the steps it forecasts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

CALENDAR_FEATURES = ("hour_of_day", "day_of_week", "day_of_year")


def calendar_columns(names: Sequence[str]) -> list[str]:
    """Column names of the generated features: ``{name}_sin``, ``{name}_cos`` per feature."""
    return [f"{name}_{part}" for name in names for part in ("sin", "cos")]


def _phase(local: pd.DatetimeIndex, name: str) -> np.ndarray:
    """Position in the feature's cycle, in [0, 1)."""
    hours = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    if name == "hour_of_day":
        return hours / 24.0
    if name == "day_of_week":
        return (local.day_of_week.to_numpy() + hours / 24.0) / 7.0
    if name == "day_of_year":
        return (local.day_of_year.to_numpy() - 1 + hours / 24.0) / 365.25
    raise ValueError(f"unknown calendar feature {name!r}; choose from {CALENDAR_FEATURES}")


def calendar_features(stamps_ns: np.ndarray, names: Sequence[str], timezone: str) -> np.ndarray:
    """Features of UTC ``stamps_ns`` (int64 ns), shape (len(stamps_ns), 2 * len(names))."""
    if not names:
        return np.zeros((len(stamps_ns), 0), np.float32)
    local = pd.DatetimeIndex(pd.to_datetime(stamps_ns, unit="ns", utc=True)).tz_convert(timezone)
    columns = []
    for name in names:
        angle = 2.0 * np.pi * _phase(local, name)
        columns.extend([np.sin(angle), np.cos(angle)])
    return np.stack(columns, axis=1).astype(np.float32)
