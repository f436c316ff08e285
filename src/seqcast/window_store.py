"""The window store: windows of each split as Parquet, beside their scaler and layout.

Each split is one Parquet file of rows ``(series, origin, x, y)`` where ``x`` and ``y``
are fixed-size float lists (flattened ``(lookback, n_inputs)`` and ``(horizon,
n_targets)``), so reading a split back is one zero-copy reshape. A windows directory
is content-addressed by its inputs and published whole (staging directory + rename).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pyarrow as pa

from seqcast import __version__, storage
from seqcast.scaling import Scaler
from seqcast.windowing import SPLITS, WindowArrays, WindowLayout


def windows_fingerprint(data_fingerprint: str, settings: dict) -> str:
    """Key of a windows directory: the data, every setting that shapes windows, the code."""
    payload = json.dumps(
        {"data": data_fingerprint, "settings": settings, "code": __version__}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _fixed_list(values: np.ndarray) -> pa.FixedSizeListArray:
    n = len(values)
    width = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    flat = pa.array(np.ascontiguousarray(values, np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width) if n or width else flat


def windows_table(windows: WindowArrays, layout: WindowLayout) -> pa.Table:
    columns = {
        "series": pa.array(windows.series.astype(str)),
        "origin": pa.array(windows.origin, type=pa.timestamp("ns", tz="UTC")),
        "x": _fixed_list(windows.x),
    }
    if layout.task == "forecast":
        columns["y"] = _fixed_list(windows.y)
    else:
        columns["y"] = pa.array(windows.y.astype(np.int32))
    return pa.table(columns)


def write_windows(
    uri: str, windows: dict[str, WindowArrays], scaler: Scaler, layout: WindowLayout
) -> dict[str, int]:
    """Write every split, the scaler and the layout under ``uri`` (a fresh directory)."""
    for split in SPLITS:
        storage.write_parquet(
            windows_table(windows[split], layout), storage.join(uri, f"{split}.parquet")
        )
    storage.write_json(storage.join(uri, "scaler.json"), scaler.to_json())
    storage.write_json(storage.join(uri, "layout.json"), dataclasses.asdict(layout))
    return {split: len(windows[split]) for split in SPLITS}


def read_layout(uri: str) -> WindowLayout:
    return WindowLayout(**storage.read_json(storage.join(uri, "layout.json")))


def read_scaler(uri: str) -> Scaler:
    return Scaler.from_json(storage.read_json(storage.join(uri, "scaler.json")))


def read_split(uri: str, split: str, layout: WindowLayout) -> WindowArrays:
    """Load one split's windows as arrays shaped as `WindowArrays` documents."""
    table = storage.read_parquet(storage.join(uri, f"{split}.parquet"))
    n = table.num_rows
    x = table["x"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    x = x.reshape(n, layout.lookback, len(layout.input_columns))  # (batch, lookback, features)
    if layout.task == "forecast":
        y = table["y"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        y = y.reshape(n, layout.horizon, len(layout.target_columns))  # (batch, horizon, targets)
    else:
        y = table["y"].to_numpy()
    return WindowArrays(
        x=x,
        y=y,
        series=table["series"].to_numpy(zero_copy_only=False).astype(object),
        origin=table["origin"].to_numpy(),
    )
