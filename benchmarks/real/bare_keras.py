"""The bare Keras peer: what a tutorial script does (LSTM or GRU 64, batch 32, 20 epochs).

Windows, z-scores (per series, fitted on the training rows) and the inverse transform are
prepared by `benchmarks.real.run`; this is the script's model part, about 20 lines, with
no early stopping, no validation and no tuning. Its test MAE depends on the seed (sunspots:
20.9-22.0 over seeds 0-4), so figure 7 runs it once per seed and reports the median.
"""

from __future__ import annotations

import keras
import numpy as np


def bare_forecast(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, cell: str, seed: int = 0
) -> np.ndarray:
    """Fit on z-scored windows and forecast the test windows.

    Args:
        train_x: (windows, lookback, columns) training inputs, targets first.
        train_y: (windows, horizon, targets) training targets.
        test_x: (windows, lookback, columns) test inputs.
        cell: ``lstm`` or ``gru``.
        seed: Keras' random seed (weights and batch order).

    Returns:
        (windows, horizon, targets) z-scored forecasts.
    """
    keras.utils.set_random_seed(seed)
    horizon, n_targets = train_y.shape[1:]
    layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    model = keras.Sequential(
        [
            keras.Input(shape=train_x.shape[1:]),  # (batch, lookback, columns)
            layer(64),
            keras.layers.Dense(horizon * n_targets),
            keras.layers.Reshape((horizon, n_targets)),  # (batch, horizon, targets)
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(train_x, train_y, batch_size=32, epochs=20, verbose=0)
    return np.asarray(model.predict(test_x, verbose=0))
