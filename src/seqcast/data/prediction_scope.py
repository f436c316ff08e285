"""What a prediction-time check looks at: the rows prediction reads, judged per series.

Prediction reads each series' recent rows only (a network its last ``lookback`` steps, a
seasonal naive champion one season, ETS the history it refits on), so the prediction
contract is checked on those rows only: a null in 1958 of a weekly series whose last 52
weeks are clean must not stop tonight's forecast. The cut is made on the snapshot as read,
before parsing and Great Expectations, so the check's time and memory follow the rows
read, not the length of the history.

A row cannot be dropped from the rows a forecast starts from (it would put a gap into the
window), so a series whose read rows break a row rule is set aside whole for the run, and
the others are predicted (`per_series_contract`); the run fails only when more than the
contract's ``series_quarantine_limit`` of the series are set aside. A gap inside the rows a
forecast starts from (`recent_gaps`) sets its series aside the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqcast.config import SourceSpec
from seqcast.data.contracts import ROW_RULES, Contract
from seqcast.data.parsing import parse_text, parse_timestamps
from seqcast.frequency import Frequency, steps_after

SERIES_RULES = ("unique_key", "series_length", "recent_gap")
"""Rules besides the row rules whose ``fail`` sets the series aside at prediction time."""


@dataclass(frozen=True)
class PredictionScope:
    """The rows of each series that prediction reads, and how many it needs.

    rows: the last ``rows`` rows of each series are checked; None = the whole history
        (a whole-sequence classifier reads every step of each sequence).
    min_rows: rows a series needs to be predicted at all (one lookback; one season for a
        seasonal naive champion with a longer season).
    """

    rows: int | None
    min_rows: int
    gap_free: int = 0
    """The last ``gap_free`` rows of a series must be consecutive grid steps (a network's
    lookback window, a seasonal naive season); a gap there sets the series aside. 0: none
    (ETS fills gaps; a whole sequence is read as it is)."""
    future_steps: int = 0
    """Future rows each series must have right after its last observation (the horizon,
    for a network reading known-future columns; `seqcast.data.future_rows`)."""
    frequency: str | None = None
    """The series' grid (the champion's), for ``gap_free`` and ``future_steps``."""
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.rows is not None and self.rows < 1:
            raise ValueError(f"`rows` must be a positive integer. Received: rows={self.rows}")
        if self.min_rows < 1:
            raise ValueError(
                f"`min_rows` must be a positive integer. Received: min_rows={self.min_rows}"
            )
        if (self.gap_free or self.future_steps) and self.frequency is None:
            raise ValueError(
                "`frequency` is required with `gap_free` or `future_steps`. Received: "
                f"gap_free={self.gap_free}, future_steps={self.future_steps}, frequency=None"
            )


def row_places(
    raw: pd.DataFrame, contract: Contract, source: SourceSpec
) -> tuple[pd.Series, pd.Series]:
    """Each raw row's parsed timestamp and series id (NaT / NA where one does not parse; the
    constant "series" without a series column): where a row stands in time, for the cuts
    made before the checks (`recent_rows`, `seqcast.data.future_rows`)."""
    rule = contract.columns.get(source.timestamp)
    stamps = parse_timestamps(
        raw[source.timestamp], source.timezone, rule.format if rule else None, source.time_unit
    ).values
    if source.series_id:
        return stamps, parse_text(raw[source.series_id]).values.astype(object)
    return stamps, pd.Series("series", index=raw.index, dtype=object)


def recent_rows(raw: pd.DataFrame, contract: Contract, source: SourceSpec, rows: int) -> np.ndarray:
    """Positions (in ``raw``'s order) of each series' last ``rows`` rows by timestamp.

    A row whose timestamp or series id is missing or does not parse cannot be placed in
    time: it is kept, so the check reports it rather than hiding it. Ties keep read order.
    """
    ts = source.timestamp
    every = np.arange(len(raw), dtype=np.int64)
    if ts not in raw.columns or (source.series_id and source.series_id not in raw.columns):
        return every  # a missing column fails the structure check: nothing to cut
    stamps, series = row_places(raw, contract, source)
    placed = stamps.notna().to_numpy(bool) & series.notna().to_numpy(bool)
    frame = pd.DataFrame(
        {"series": series.to_numpy()[placed], "ts": stamps.to_numpy()[placed], "pos": every[placed]}
    )
    frame = frame.sort_values(["series", "ts", "pos"], kind="stable")
    latest = frame.groupby("series", sort=False).tail(rows)["pos"].to_numpy(np.int64)
    return np.sort(np.concatenate([latest, every[~placed]]))


def recent_gaps(
    series: np.ndarray, stamps_ns: np.ndarray, rows: int, frequency: Frequency, timezone: str
) -> dict[str, tuple[int, int]]:
    """Series whose last ``rows`` rows are not consecutive steps of ``frequency``.

    Args:
        series: (n,) series names; stamps_ns: (n,) UTC int64 ns; both sorted by
            (series, time), one row per step.

    Returns:
        series -> (the last row before its latest gap, the first after it), UTC ns.
    """
    series = np.asarray(series, dtype=object)
    stamps_ns = np.asarray(stamps_ns, np.int64)
    if len(series) < 2 or rows < 2:
        return {}
    from_end = pd.Series(series).groupby(series, sort=False).cumcount(ascending=False).to_numpy()
    nxt = steps_after(stamps_ns[:-1], np.asarray([1]), frequency, timezone)[:, 0]
    same = series[:-1] == series[1:]
    broken = same & (nxt != stamps_ns[1:]) & (from_end[1:] < rows - 1)
    out: dict[str, tuple[int, int]] = {}
    for i in np.flatnonzero(broken):  # the latest gap of a series wins
        out[str(series[i])] = (int(stamps_ns[i]), int(stamps_ns[i + 1]))
    return out


def per_series_contract(contract: Contract) -> Contract:
    """``contract`` as a prediction-time check applies it: every ``fail`` of a row rule (a
    column's own too), of the unique key and of the series length becomes ``quarantine``,
    which at prediction time sets the series aside rather than stopping every series'
    forecast. ``warn`` stays a warning; table rules (a missing column, mixed time zones,
    the frequency) still fail the run."""
    severity = contract.severity.model_copy(
        update={
            rule: "quarantine"
            for rule in (*ROW_RULES, *SERIES_RULES)
            if getattr(contract.severity, rule) == "fail"
        }
    )
    columns = {
        name: rule.model_copy(update={"severity": "quarantine"} if rule.severity == "fail" else {})
        for name, rule in contract.columns.items()
    }
    return contract.model_copy(update={"severity": severity, "columns": columns})
