"""When should training stop on a short series? Offline check behind figure 7's sunspots note.

For one figure-7 series (time split 70/10/20, windows of every origin, z-score on the training
rows) a GRU(64) -> Dense(horizon), as the bare script builds it, is trained epoch by epoch;
each epoch's test MAE is recorded beside the validation MAE of

- the one validation tail seqcast uses (the 10% before the test period), and
- rolling origins: that tail plus up to 3 earlier tails of the same length, each scored by a
  model trained (same seed) only on the windows that end before it; their curves averaged.

It prints, per seed, the test MAE at epoch 20 (the bare script's budget), the best test epoch,
and the test MAE at the epoch each validation signal picks (its lowest validation MAE).

    PYTHONPATH=$PWD/src:$PWD python -m benchmarks.real.stopping sunspots 22 5 --batch 32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from benchmarks.real.datasets import DATASETS, write_csv

WORK = Path(".seqcast/bench-real")
EPOCHS = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("lookback", type=int)
    parser.add_argument("horizon", type=int)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    lookback, horizon = args.lookback, args.horizon
    y = pd.read_csv(write_csv(DATASETS[args.dataset], WORK)).iloc[:, -1].to_numpy(float)
    n = len(y)
    val_rows = int(round(n * 0.1))
    t_test = n - int(round(n * 0.2))
    t_val = t_test - val_rows
    starts = np.arange(0, n - lookback - horizon + 1)
    x = np.stack([y[s : s + lookback] for s in starts])  # (windows, lookback)
    target = np.stack([y[s + lookback : s + lookback + horizon] for s in starts])
    origin = starts + lookback  # first target row
    test = origin >= t_test
    mean, std = y[:t_val].mean(), y[:t_val].std()
    xz, yz = ((x - mean) / std)[..., None], (target - mean) / std

    def curve(seed: int, fit: np.ndarray, score: np.ndarray) -> np.ndarray:
        """MAE on ``score`` windows after each epoch of training on ``fit`` windows."""
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((lookback, 1)), keras.layers.GRU(64), keras.layers.Dense(horizon)]
        )
        model.compile(optimizer="adam", loss="mse")
        out = []
        for _ in range(EPOCHS):
            model.fit(xz[fit], yz[fit], batch_size=args.batch, epochs=1, verbose=0)
            forecast = model.predict(xz[score], verbose=0) * std + mean
            out.append(float(np.abs(forecast - target[score]).mean()))
        return np.array(out)

    def tail(end: int) -> tuple[np.ndarray, np.ndarray]:
        """(training windows, validation windows) of a validation tail ending at row ``end``."""
        start = end - val_rows
        return origin + horizon <= start, (origin >= start) & (origin + horizon <= end)

    for seed in range(args.seeds):
        train, val = tail(t_test)
        test_curve = curve(seed, train, test)
        one_tail = curve(seed, train, val)
        folds = [one_tail]
        for k in (1, 2, 3):
            fit, score = tail(t_test - k * val_rows)
            if fit.sum() >= 20 and score.sum() >= 3:
                folds.append(curve(seed, fit, score))
        rolling = np.mean(folds, axis=0)
        picked_tail, picked_rolling = int(one_tail.argmin()), int(rolling.argmin())
        print(
            f"seed {seed} batch {args.batch}: test MAE at epoch 20 {test_curve[19]:.1f}; "
            f"best {test_curve.min():.1f} (epoch {test_curve.argmin() + 1}); "
            f"one tail picks epoch {picked_tail + 1}: {test_curve[picked_tail]:.1f}; "
            f"{len(folds)} rolling tails pick epoch {picked_rolling + 1}: "
            f"{test_curve[picked_rolling]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
