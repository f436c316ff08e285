"""Predict: the champion's forecast (or class) from the latest ``lookback`` steps of each series."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from seqcast.covariates import calendar_features
from seqcast.errors import DataContractError
from seqcast.registry import LoadedModel
from seqcast.series_grid import NS_PER_SECOND
from seqcast.windowing import segment_ids

logger = logging.getLogger(__name__)


def latest_windows(frame: pd.DataFrame, champion: LoadedModel) -> tuple[np.ndarray, pd.DataFrame]:
    """The last ``lookback`` rows of each series, scaled: (series, lookback, n_inputs).

    Returns the stacked inputs and one row per series with its id and last timestamp.
    Raises `DataContractError` for a series that is too short or ends in a gap.
    """
    layout, scaler = champion.layout, champion.scaler
    blocks, index = [], []
    for series, rows in frame.groupby(layout.series_column, sort=True):
        tail = rows.tail(layout.lookback)
        segments = segment_ids(tail[layout.timestamp], layout.step_seconds)
        if len(tail) < layout.lookback or segments[0] != segments[-1]:
            raise DataContractError(
                f"series {series!r} has no gap-free run of the last {layout.lookback} steps "
                f"(lookback) to predict from; it has {len(rows)} row(s) ending at "
                f"{rows[layout.timestamp].iloc[-1]}. Supply the full lookback period."
            )
        values = tail[layout.input_columns].to_numpy(np.float32)
        blocks.append(scaler.transform(values, str(series)))
        index.append({"series": str(series), "origin": tail[layout.timestamp].iloc[-1]})
    return np.stack(blocks), pd.DataFrame(index)  # (series, lookback, features)


def covariate_inputs(
    frame: pd.DataFrame, index: pd.DataFrame, champion: LoadedModel
) -> dict[str, np.ndarray]:
    """Known-future and static inputs for each series' forecast (empty without covariates).

    Calendar features are computed for the forecast steps; configured known-future
    columns would need rows beyond the last observation, which batch prediction does not
    read yet, so they are refused with a message.
    """
    layout = champion.layout
    out: dict[str, np.ndarray] = {}
    given = layout.n_future - 2 * len(layout.calendar)
    if given:
        raise DataContractError(
            f"the champion reads known-future columns {layout.future_columns[:given]} at the "
            f"forecast steps; batch prediction cannot supply their future values yet. Train "
            f"without source.future_features (calendar features are supported)."
        )
    if layout.n_future:
        step_ns = int(round(layout.step_seconds * NS_PER_SECOND))
        origins = pd.DatetimeIndex(index["origin"]).as_unit("ns").asi8
        ahead = origins[:, None] + step_ns * np.arange(1, layout.horizon + 1)  # (series, horizon)
        features = calendar_features(ahead.reshape(-1), layout.calendar, layout.timezone)
        out["future"] = features.reshape(len(index), layout.horizon, layout.n_future)
    if layout.n_static:
        first = frame.groupby(layout.series_column, sort=True)[layout.static_columns].first()
        first.index = first.index.astype(str)
        out["static"] = first.loc[index["series"]].to_numpy(np.float32)  # (series, n_static)
    return out


def predict_frame(frame: pd.DataFrame, champion: LoadedModel) -> pd.DataFrame:
    """Predictions for every series of a validated frame, in original units.

    Forecast: one row per series and horizon step. Classify: one row per series, with the
    class and its probability at ``horizon`` steps after the last observed step.
    """
    layout = champion.layout
    inputs, index = latest_windows(frame, champion)
    covariates = covariate_inputs(frame, index, champion)
    model_input = {"window": inputs, **covariates} if covariates else inputs
    outputs = champion.model.predict(model_input, verbose=0, batch_size=1024)
    step = pd.Timedelta(seconds=layout.step_seconds)
    series_name = layout.series_column if not layout.series_column.startswith("__") else "series"
    if layout.task == "classify":
        best = np.argmax(outputs, axis=-1)
        return pd.DataFrame(
            {
                series_name: index["series"],
                "origin": index["origin"],
                layout.timestamp: index["origin"] + step * layout.horizon,
                layout.target_columns[0]: [layout.classes[i] for i in best],
                "probability": outputs[np.arange(len(best)), best].astype(np.float64),
            }
        )
    parts = []
    for i, row in index.iterrows():
        # outputs[i]: (horizon, n_targets), scaled with this series' statistics
        values = champion.scaler.inverse(outputs[i], row["series"], layout.target_columns)
        part = pd.DataFrame(values, columns=layout.target_columns).astype(np.float64)
        part.insert(0, "step", np.arange(1, layout.horizon + 1, dtype=np.int32))
        part.insert(0, layout.timestamp, row["origin"] + step * part["step"])
        part.insert(0, "origin", row["origin"])
        part.insert(0, series_name, row["series"])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
