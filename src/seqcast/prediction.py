"""Predict: the champion's forecast (or class) from the latest ``lookback`` steps of each series."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from seqcast.errors import DataContractError
from seqcast.registry import LoadedModel
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


def predict_frame(frame: pd.DataFrame, champion: LoadedModel) -> pd.DataFrame:
    """Predictions for every series of a validated frame, in original units.

    Forecast: one row per series and horizon step. Classify: one row per series, with the
    class and its probability at ``horizon`` steps after the last observed step.
    """
    layout = champion.layout
    inputs, index = latest_windows(frame, champion)
    outputs = champion.model.predict(inputs, verbose=0, batch_size=1024)
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
