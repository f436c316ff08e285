"""The known-future and static inputs of a network's forecast: what it reads beside the
lookback window.

A network trained with ``source.future_features`` takes, for each forecast step, the
configured columns then the calendar features (`WindowLayout.future_columns`), as raw
values: the model normalises them itself with the training statistics it carries
(`seqcast.modeling.networks`), exactly as the training windows fed them. The configured
columns' values come from the series' future rows, the rows after its last observed target
that validation kept (`seqcast.data.future_rows`); the calendar features are computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqcast.data.future_rows import MISSING_SHOWN, trailing_blank
from seqcast.errors import DataContractError
from seqcast.windows.covariates import calendar_features
from seqcast.windows.grid import future_stamps
from seqcast.windows.windowing import WindowLayout


def split_future(frame: pd.DataFrame, layout: WindowLayout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A validated frame (sorted by series and time) as (observed rows, future rows).

    Future rows are those after their series' last row with a target value; a classifier
    or a whole-sequence model has none (a label may be absent at prediction time).
    """
    if layout.task != "forecast" or layout.per == "sequence" or frame.empty:
        return frame, frame.iloc[:0]
    has_target = frame[layout.target_columns].notna().any(axis=1).to_numpy(bool)
    future = trailing_blank(frame[layout.series_column].to_numpy(object), has_target)
    return frame[~future], frame[future]


def given_columns(layout: WindowLayout) -> list[str]:
    """The configured known-future columns (``source.future_features``) of a layout: its
    future columns before the calendar features' sin/cos pairs."""
    return layout.future_columns[: layout.n_future - 2 * len(layout.calendar)]


def known_future(future: pd.DataFrame, index: pd.DataFrame, layout: WindowLayout) -> np.ndarray:
    """The configured known-future columns at each series' forecast steps, raw values:
    (series, horizon, n_given), in ``index``'s series order.

    Raises:
        DataContractError: a series lacks a future row at one of its forecast steps
            (validation refuses such input first; this guards a table from elsewhere).
    """
    columns = given_columns(layout)
    origins = pd.DatetimeIndex(index["origin"]).as_unit("ns").asi8
    ahead = future_stamps(origins, np.arange(1, layout.horizon + 1), layout)  # (n, horizon)
    future = future.reindex(columns=[layout.series_column, layout.timestamp, *columns])
    stamps = pd.DatetimeIndex(pd.to_datetime(future[layout.timestamp], utc=True))
    table = pd.DataFrame(
        future[columns].to_numpy(np.float64),
        index=pd.MultiIndex.from_arrays(
            [future[layout.series_column].astype(str).to_numpy(), stamps.as_unit("ns").asi8]
        ),
        columns=columns,
    )
    table = table[~table.index.duplicated(keep="first")]
    wanted = pd.MultiIndex.from_arrays(
        [np.repeat(index["series"].to_numpy(object), layout.horizon), ahead.reshape(-1)]
    )
    values = table.reindex(wanted).to_numpy(np.float64)  # (n * horizon, n_given)
    absent = np.flatnonzero(np.isnan(values).any(axis=1))
    if len(absent):
        shown = ", ".join(
            f"{wanted[i][0]!r} {pd.Timestamp(wanted[i][1], tz='UTC').isoformat()}"
            for i in absent[:MISSING_SHOWN]
        )
        more = len(absent) - MISSING_SHOWN
        raise DataContractError(
            f"{len(absent)} forecast step(s) have no value of the known-future columns "
            f"{columns}: {shown}{f' (+{more} more)' if more > 0 else ''}. Give each series a "
            f"row per forecast step after its last observation (target blank, "
            f"{', '.join(columns)} filled), in source.path or source.future_path."
        )
    return values.reshape(len(index), layout.horizon, len(columns)).astype(np.float32)


def covariate_inputs(
    frame: pd.DataFrame, future: pd.DataFrame, index: pd.DataFrame, layout: WindowLayout
) -> dict[str, np.ndarray]:
    """Known-future and static inputs for each series' forecast (empty without covariates).

    Args:
        frame: the series' observed rows (static features: each series' first value).
        future: the series' future rows (`split_future`).
        index: one row per series, its id and origin (the last observed step), in the
            order of the model's other inputs.
    """
    out: dict[str, np.ndarray] = {}
    if layout.n_future:
        if given_columns(layout) and layout.task != "forecast":
            raise DataContractError(
                f"the champion reads known-future columns {given_columns(layout)}, which "
                "batch prediction reads for forecasts only. Train the classifier without "
                "source.future_features (calendar features are supported)."
            )
        origins = pd.DatetimeIndex(index["origin"]).as_unit("ns").asi8
        ahead = future_stamps(origins, np.arange(1, layout.horizon + 1), layout)  # (n, horizon)
        calendar = calendar_features(ahead.reshape(-1), layout.calendar, layout.timezone)
        parts = [calendar.reshape(len(index), layout.horizon, -1)]
        if given_columns(layout):
            parts.insert(0, known_future(future, index, layout))  # configured columns first
        out["future"] = np.concatenate(parts, axis=-1)  # (series, horizon, n_future)
    if layout.n_static:
        first = frame.groupby(layout.series_column, sort=True)[layout.static_columns].first()
        first.index = first.index.astype(str)
        out["static"] = first.loc[index["series"]].to_numpy(np.float32)  # (series, n_static)
    return out
