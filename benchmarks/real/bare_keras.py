"""The network peers: a bare tutorial script and a Darts-style block RNN, in plain Keras.

Windows, scaling (per series, fitted on the training rows) and the inverse transform are
prepared by `benchmarks.real.run`; this is each peer's model part, with no early stopping,
no validation and no tuning. Their test MAE depends on the seed (the bare GRU on sunspots:
20.9-22.0 over seeds 0-4), so figure 7 runs them once per seed and reports the median.

- **bare** (`bare_forecast`): what a 20-line Keras tutorial does: LSTM or GRU 64, batch 32,
  20 epochs, on z-scored values.
- **Darts-style** (`darts_forecast`): the defaults of Darts' ``BlockRNNModel`` (an RNN
  encoder of 25 units, one layer, a dense block decoder of the whole horizon; batch 32,
  100 epochs, Adam 1e-3, MSE) on values min-max scaled to [0, 1], as Darts' ``Scaler``
  does by default. Darts itself (PyTorch) is not installed: it is the recipe, rebuilt in
  Keras, not Darts' code, so initialisation and numerics differ.
"""

from __future__ import annotations

import keras
import numpy as np


def _fit_forecast(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    cell: str,
    seed: int,
    units: int,
    epochs: int,
) -> np.ndarray:
    """One recurrent layer and a dense block of the whole horizon, fitted with Adam on MSE."""
    keras.utils.set_random_seed(seed)
    horizon, n_targets = train_y.shape[1:]
    layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    model = keras.Sequential(
        [
            keras.Input(shape=train_x.shape[1:]),  # (batch, lookback, columns)
            layer(units),
            keras.layers.Dense(horizon * n_targets),
            keras.layers.Reshape((horizon, n_targets)),  # (batch, horizon, targets)
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(train_x, train_y, batch_size=32, epochs=epochs, verbose=0)
    return np.asarray(model.predict(test_x, verbose=0))


def bare_forecast(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, cell: str, seed: int = 0
) -> np.ndarray:
    """The tutorial script: fit on z-scored windows and forecast the test windows.

    Args:
        train_x: (windows, lookback, columns) training inputs, targets first.
        train_y: (windows, horizon, targets) training targets.
        test_x: (windows, lookback, columns) test inputs.
        cell: ``lstm`` or ``gru``.
        seed: Keras' random seed (weights and batch order).

    Returns:
        (windows, horizon, targets) forecasts, scaled as the inputs.
    """
    return _fit_forecast(train_x, train_y, test_x, cell, seed, units=64, epochs=20)


def darts_forecast(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, cell: str, seed: int = 0
) -> np.ndarray:
    """Darts' ``BlockRNNModel`` defaults (25 units, 100 epochs) on min-max scaled windows.

    Arguments and result as `bare_forecast`.
    """
    return _fit_forecast(train_x, train_y, test_x, cell, seed, units=25, epochs=100)
