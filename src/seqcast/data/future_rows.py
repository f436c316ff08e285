"""Future rows: the known-future covariates of the forecast steps, given as rows after each
series' last observation.

A model trained with ``source.future_features`` (a promotion flag, a holiday, a planned
price) reads those columns at the ``horizon`` steps it forecasts, so prediction needs
their values there. They come as rows of the source itself, or of ``source.future_path``
(same series id and timestamp columns, the future-feature columns, no target), and a row
is a *future row* when it lies after its series' last observed target:

    the last observed target of a series = its latest row (by timestamp) with a target
    value; every later row of the series, whose target is blank, is a future row.

So a source can carry tomorrow's promotions beside today's loads, and the same file trains
and predicts: training sets the future rows aside before any check (they hold no target
to learn from, so they are neither training rows nor quarantined nulls), and prediction
reads the ``horizon`` rows right after each series' last observation on its grid and
refuses the run, naming series and timestamps, when one is missing. A blank target
*inside* the history stays what it was: a null, checked by the contract. Rows of
``future_path`` at or before their series' last observation are not future rows and are
not read.

The cut is made on the snapshot as read (text), like `seqcast.data.prediction_scope`'s
`recent_rows`, so the checks that follow see only the rows prediction reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from seqcast.config import SourceSpec
from seqcast.data.contracts import Contract
from seqcast.data.ingest import SOURCE_FUTURE
from seqcast.data.parsing import null_text
from seqcast.data.prediction_scope import PredictionScope, recent_rows, row_places
from seqcast.frequency import Frequency, parse_frequency, steps_after

MISSING_SHOWN = 5
"""Missing future rows named in a message; the rest are counted."""


@dataclass(frozen=True)
class FutureSplit:
    """A snapshot's rows, as the future-row rule sorts them (positions in its order).

    observed: rows up to each series' last observed target (and rows that cannot be
        placed in time: the checks report them).
    future: the future rows prediction reads: each series' ``steps`` grid steps after its
        last observation (none when nothing reads them).
    unused: future rows not read: beyond the horizon or off the grid, all of them when
        the model reads none, and ``future_path`` rows at or before the last observation.
    missing: series -> the timestamps (UTC ns) of the future rows it lacks.
    """

    observed: np.ndarray
    future: np.ndarray
    unused: int = 0
    missing: dict[str, list[int]] = field(default_factory=dict)


def splits_future_rows(contract: Contract, source: SourceSpec) -> bool:
    """Whether the future-row rule applies: a forecast (numeric targets) with
    ``source.future_features``. A classifier's label may be absent at prediction time, so
    a blank label says nothing about the future there."""
    targets = [contract.columns.get(t) for t in source.target]
    numeric = all(rule is not None and rule.type in ("float", "int") for rule in targets)
    return bool(source.future_features) and numeric


def trailing_blank(series: np.ndarray, has_target: np.ndarray) -> np.ndarray:
    """For rows sorted by (series, time): True on the rows after their series' last row
    with a target (a series with no target at all has none: nothing to forecast from)."""
    series = np.asarray(series)
    has_target = np.asarray(has_target, bool)
    n = len(series)
    if n == 0:
        return np.zeros(0, bool)
    index = np.arange(n)
    marked = pd.Series(np.where(has_target, index, -1))
    last = marked.groupby(series, sort=False).transform("max").to_numpy()
    return (last >= 0) & (index > last)


def split_future_rows(
    raw: pd.DataFrame,
    contract: Contract,
    source: SourceSpec,
    steps: int = 0,
    frequency: Frequency | None = None,
) -> FutureSplit:
    """Sort a snapshot's rows into observed and future ones (module docstring).

    Args:
        raw: the snapshot as read (text, one column per source column).
        contract: its contract (the timestamp format).
        source: the column roles and the timezone of naive timestamps.
        steps: future rows each series needs (the horizon); 0 = none are read.
        frequency: the series' grid (needed when ``steps`` > 0).
    """
    every = np.arange(len(raw), dtype=np.int64)
    ts = source.timestamp
    needed = [ts, *source.target, *([source.series_id] if source.series_id else [])]
    if any(c not in raw.columns for c in needed):
        return FutureSplit(every, every[:0])  # a missing column fails the structure check
    stamps, names = row_places(raw, contract, source)
    from_file = (
        (raw[SOURCE_FUTURE] == "1").to_numpy(bool)
        if SOURCE_FUTURE in raw.columns
        else np.zeros(len(raw), bool)
    )
    has_target = ~np.logical_and.reduce([null_text(raw[t]).to_numpy(bool) for t in source.target])
    placed = stamps.notna().to_numpy(bool) & names.notna().to_numpy(bool)
    frame = pd.DataFrame(
        {
            "series": names.to_numpy()[placed].astype(str),
            "ns": pd.DatetimeIndex(stamps[placed]).as_unit("ns").asi8,
            "pos": every[placed],
            "observed": (has_target & ~from_file)[placed],
            "from_file": from_file[placed],
        }
    ).sort_values(["series", "ns", "pos"], kind="stable")
    origin = (
        frame["ns"].where(frame["observed"]).groupby(frame["series"], sort=False).transform("max")
    )
    after = (frame["ns"] > origin).to_numpy(bool)  # False for a series with no target
    stale = frame["from_file"].to_numpy(bool) & ~after  # future_path rows in the history
    candidates = frame[after]
    observed = np.sort(
        np.concatenate([frame["pos"].to_numpy()[~after & ~stale], every[~placed]])
    ).astype(np.int64)
    if steps <= 0:
        return FutureSplit(observed, every[:0], int(after.sum() + stale.sum()))
    if frequency is None:
        raise ValueError("`frequency` is required when `steps` > 0 (the grid of the series)")
    origins = frame.loc[frame["observed"]].groupby("series", sort=True)["ns"].max()
    expected = steps_after(
        origins.to_numpy(np.int64), np.arange(1, steps + 1), frequency, source.timezone
    )  # (series, steps)
    wanted = pd.DataFrame(
        {
            "series": np.repeat(origins.index.to_numpy(object), steps).astype(str),
            "ns": expected.reshape(-1),
        }
    )
    hit = candidates.merge(wanted, on=["series", "ns"], how="inner")
    found = wanted.merge(candidates[["series", "ns"]].drop_duplicates(), how="left", indicator=True)
    gaps = found[found["_merge"] == "left_only"]
    missing = {
        str(name): group["ns"].astype(np.int64).tolist()
        for name, group in gaps.groupby("series", sort=True)
    }
    future = np.sort(hit["pos"].to_numpy(np.int64))
    unused = int(len(candidates) - len(hit) + stale.sum())
    return FutureSplit(observed, future, unused, missing)


def rows_read(
    raw: pd.DataFrame, contract: Contract, source: SourceSpec, scope: PredictionScope | None
) -> tuple[pd.DataFrame, FutureSplit | None]:
    """The rows to check: the observed ones (each series' last ``scope.rows`` at prediction
    time), then the future rows prediction reads (the module docstring; training and
    a champion reading no known-future column set them aside unchecked)."""
    split = None
    if splits_future_rows(contract, source):
        steps = scope.future_steps if scope is not None else 0
        alias = scope.frequency if scope is not None and steps else None
        grid = parse_frequency(alias) if alias is not None else None
        split = split_future_rows(raw, contract, source, steps, grid)
        observed = raw.iloc[split.observed].reset_index(drop=True)
    else:
        observed = raw
    if scope is not None and scope.rows is not None:
        observed = observed.iloc[recent_rows(observed, contract, source, scope.rows)]
    if split is None:
        return observed.reset_index(drop=True), None
    return pd.concat([observed, raw.iloc[split.future]], ignore_index=True), split
