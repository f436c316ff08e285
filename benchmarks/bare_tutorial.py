"""The reference for figure 5: the same work done the tutorial way, in one plain function.

pandas reads the CSVs; numpy cuts windows per series with sliding_window_view (time split,
z-score on the train part, a window belongs to the split holding its targets); Keras fits
the same LSTM on in-memory arrays and evaluates it on the test windows. No validation,
no baselines, no registry, no orchestration.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from seqcast.config import PipelineConfig


def windows(frame: pd.DataFrame, config: PipelineConfig) -> dict[str, tuple[np.ndarray, ...]]:
    lookback, horizon, stride = config.window.lookback, config.window.horizon, config.window.stride
    columns = config.source.value_columns
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
    for _, rows in frame.groupby("sensor", sort=True):
        values = rows[columns].to_numpy(np.float32)
        n = len(values)
        test_start = n - round(n * config.split.test)
        val_start = test_start - round(n * config.split.val)
        mean, std = values[:val_start].mean(axis=0), values[:val_start].std(axis=0)
        scaled = (values - mean) / std
        x_all = sliding_window_view(scaled, lookback, axis=0).transpose(0, 2, 1)
        y_all = sliding_window_view(scaled[:, 0], horizon)
        starts = np.arange(0, n - lookback - horizon + 1, stride)
        first, last = starts + lookback, starts + lookback + horizon - 1
        for split, lo, hi in (
            ("train", 0, val_start),
            ("val", val_start, test_start),
            ("test", test_start, n),
        ):
            chosen = starts[(first >= lo) & (last < hi)]
            parts[split].append((x_all[chosen], y_all[chosen + lookback][..., None]))
    return {
        split: (np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps]))
        for split, ps in parts.items()
    }


def run(csv_dir: Path, config: PipelineConfig) -> dict[str, Any]:
    """Read, window, fit, evaluate; returns the test loss and MAE (scaled units) and the
    seconds of each phase."""
    phases: dict[str, float] = {}
    started = time.perf_counter()
    frame = pd.concat([pd.read_csv(f) for f in sorted(csv_dir.glob("*.csv"))], ignore_index=True)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame = frame.sort_values(["sensor", "ts"])
    phases["read_s"] = time.perf_counter() - started
    started = time.perf_counter()
    data = windows(frame, config)
    phases["windows_s"] = time.perf_counter() - started
    started = time.perf_counter()
    spec, window = config.model, config.window
    keras.utils.set_random_seed(spec.seed)
    model = keras.Sequential(
        [
            keras.Input((window.lookback, len(config.source.value_columns))),
            keras.layers.LSTM(spec.units[0]),
            keras.layers.Dense(window.horizon),
            keras.layers.Reshape((window.horizon, 1)),
        ]
    )
    model.compile(keras.optimizers.Adam(spec.learning_rate), loss="mse", metrics=["mae"])
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    model.fit(
        x,
        y,
        validation_data=(xv, yv),
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        shuffle=True,
        verbose=0,
    )
    phases["fit_s"] = time.perf_counter() - started
    started = time.perf_counter()
    loss, mae = model.evaluate(xt, yt, batch_size=1024, verbose=0)
    phases["evaluate_s"] = time.perf_counter() - started
    return {"train_windows": len(x), "test_loss": loss, "test_mae": mae, **phases}
