"""The bare script `bench_startup` times against `seqcast train`: read the CSV, z-score on
the training rows, window, fit the tutorial LSTM (`benchmarks.real.bare_keras`), forecast
the test windows. Run as ``python -m benchmarks.startup_bare CSV EPOCHS``; its wall time
includes the interpreter and TensorFlow's import, as a user's script's does.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

LOOKBACK, HORIZON = 22, 5
"""As benchmarks/real/configs/sunspots.yaml."""


def windows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(windows, lookback, 1) inputs and (windows, horizon, 1) targets of one series."""
    span = LOOKBACK + HORIZON
    stacked = np.lib.stride_tricks.sliding_window_view(values, span)  # (windows, span)
    return stacked[:, :LOOKBACK, None], stacked[:, LOOKBACK:, None]


def main(csv: str, epochs: int) -> None:
    import keras

    values = pd.read_csv(csv)["SUNACTIVITY"].to_numpy(dtype=np.float32)
    cut = int(len(values) * 0.7)  # seqcast's split: 70 / 10 / 20
    mean, std = values[:cut].mean(), values[:cut].std()
    train_x, train_y = windows((values[:cut] - mean) / std)
    test_x, _ = windows((values[int(len(values) * 0.8) :] - mean) / std)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=train_x.shape[1:]),  # (batch, lookback, 1)
            keras.layers.LSTM(64),
            keras.layers.Dense(HORIZON),
            keras.layers.Reshape((HORIZON, 1)),  # (batch, horizon, 1)
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(train_x, train_y, batch_size=32, epochs=epochs, verbose=0)
    forecasts = np.asarray(model.predict(test_x, verbose=0)) * std + mean
    print(f"{len(forecasts)} test forecasts")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
