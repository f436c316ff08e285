"""Deterministic synthetic data: the demo's sample sets and the tests' fixtures.

``load`` series: hourly electricity-like load with daily and weekly seasonality, a
per-series level, a temperature covariate that drives the load (persistent, so past
temperature tells about the next day) and noise. ``activity`` series: a sensor whose
signal's frequency and amplitude depend on a regime label that changes every so often.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01", tz="UTC")


def load_series(n_series: int = 4, n_steps: int = 24 * 7 * 8, seed: int = 0) -> pd.DataFrame:
    """Hourly load of ``n_series`` sensors: columns ts, sensor, load, temperature."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n_steps)
    frames = []
    for i in range(n_series):
        level = 80.0 + 30.0 * i
        daily = np.sin(2 * np.pi * (hours % 24) / 24 - np.pi / 2 + 0.3 * i)
        weekly = np.where((hours // 24) % 7 >= 5, -0.25, 0.05)
        # Temperature: a daily cycle plus a slow AR(1) weather component.
        weather = np.zeros(n_steps)
        shocks = rng.normal(0.0, 0.6, n_steps)
        for t in range(1, n_steps):
            weather[t] = 0.98 * weather[t - 1] + shocks[t]
        temperature = 10.0 + 4.0 * np.sin(2 * np.pi * (hours % 24) / 24 - 2.0) + weather
        load = level * (1.0 + 0.3 * daily + weekly) + 1.5 * (temperature - 10.0)
        load += rng.normal(0.0, 0.02 * level, n_steps)
        frames.append(
            pd.DataFrame(
                {
                    "ts": START + pd.to_timedelta(hours, unit="h"),
                    "sensor": f"sensor-{i + 1}",
                    "load": load.round(3),
                    "temperature": temperature.round(3),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def promotion_series(
    n_series: int = 2, n_steps: int = 400, jump: float = 20.0, seed: int = 0
) -> pd.DataFrame:
    """Hourly load that jumps by ``jump`` on promotion hours: ts, sensor, load, promo.

    ``promo`` (0/1, about a third of the hours, drawn at random) is known in advance: a
    known-future covariate. Past values cannot tell when the next promotion comes, so only
    a model given its future values can forecast the jumps.
    """
    rng = np.random.default_rng(seed)
    hours = np.arange(n_steps)
    frames = []
    for i in range(n_series):
        promo = (rng.random(n_steps) < 1 / 3).astype(np.float64)
        daily = 5.0 * np.sin(2 * np.pi * (hours % 24) / 24 + i)
        load = 50.0 + 10.0 * i + daily + jump * promo + rng.normal(0.0, 0.5, n_steps)
        frames.append(
            pd.DataFrame(
                {
                    "ts": START + pd.to_timedelta(hours, unit="h"),
                    "sensor": f"sensor-{i + 1}",
                    "load": load.round(3),
                    "promo": promo,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _daily_frame(values: np.ndarray, series: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": START + pd.to_timedelta(np.arange(len(values)), unit="D"),
            "series": series,
            "value": values.round(3),
        }
    )


def trending_series(n_series: int = 3, n_steps: int = 500, seed: int = 0) -> pd.DataFrame:
    """Daily values with a steady upward trend and weekly seasonality: ts, series, value.

    The test period lies above anything seen in training, which defeats a z-score
    fitted on the training period alone.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    frames = []
    for i in range(n_series):
        scale = 1.0 + i
        values = scale * (100 + 0.4 * t + 8 * np.sin(2 * np.pi * t / 7 + i))
        frames.append(_daily_frame(values + rng.normal(0, 1.5 * scale, n_steps), f"trend-{i}"))
    return pd.concat(frames, ignore_index=True)


def level_shift_series(n_series: int = 3, n_steps: int = 500, seed: int = 0) -> pd.DataFrame:
    """Daily values whose level jumps every few weeks, with weekly seasonality."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    frames = []
    for i in range(n_series):
        jumps = np.zeros(n_steps)
        at = rng.choice(np.arange(20, n_steps), size=n_steps // 40, replace=False)
        jumps[at] = rng.choice([-1, 1], size=len(at)) * rng.uniform(15, 40, size=len(at))
        values = 200 + 50 * i + np.cumsum(jumps) + 10 * np.sin(2 * np.pi * t / 7 + i)
        frames.append(_daily_frame(values + rng.normal(0, 1.5, n_steps), f"shift-{i}"))
    return pd.concat(frames, ignore_index=True)


def random_walk_series(n_series: int = 3, n_steps: int = 500, seed: int = 0) -> pd.DataFrame:
    """Daily random walks (like a stock price): nothing forecasts better than the last value."""
    rng = np.random.default_rng(seed)
    frames = [
        _daily_frame(100 + 20 * i + np.cumsum(rng.normal(0, 1.0, n_steps)), f"walk-{i}")
        for i in range(n_series)
    ]
    return pd.concat(frames, ignore_index=True)


ACTIVITIES = ("idle", "walk", "run")


def activity_series(n_series: int = 3, n_steps: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Per-step activity labels and the sensor signal they shape: ts, device, accel, activity."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        regimes: list[int] = []
        while len(regimes) < n_steps:
            regimes.extend([int(rng.integers(len(ACTIVITIES)))] * int(rng.integers(40, 120)))
        regime = np.asarray(regimes[:n_steps])
        frequency = np.choose(regime, [0.02, 0.12, 0.3])
        amplitude = np.choose(regime, [0.1, 1.0, 2.0])
        phase = np.cumsum(2 * np.pi * frequency)
        accel = amplitude * np.sin(phase) + rng.normal(0.0, 0.15, n_steps)
        frames.append(
            pd.DataFrame(
                {
                    "ts": START + pd.to_timedelta(np.arange(n_steps) * 10, unit="s"),
                    "device": f"device-{i + 1}",
                    "accel": accel.round(4),
                    "activity": np.asarray(ACTIVITIES)[regime],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


SHAPES = ("slow", "fast", "burst")


def sequence_set(
    n_sequences: int = 120,
    min_length: int = 20,
    max_length: int = 60,
    n_classes: int = 3,
    test: float = 0.25,
    seed: int = 0,
) -> pd.DataFrame:
    """Labelled sequences of unequal length, like a time-series classification archive set.

    Columns: ``seq`` (sequence id), ``t`` (integer step from 0), ``value``, ``shape`` (the
    class, on every row), ``split`` (``train`` or ``test``: the last ``test`` share of each
    class). Class k is a noisy sine of its own frequency (burst: a fast sine in the second
    half only). Rows are sorted by class then id, as archive files often are.
    """
    if not 2 <= n_classes <= len(SHAPES):
        raise ValueError(f"`n_classes` must be in [2, {len(SHAPES)}]. Received: {n_classes}")
    rng = np.random.default_rng(seed)
    frames = []
    per_class = n_sequences // n_classes
    for k in range(n_classes):
        n_test = max(1, int(round(per_class * test)))
        for i in range(per_class):
            length = int(rng.integers(min_length, max_length + 1))
            t = np.arange(length)
            frequency = (0.04, 0.18, 0.18)[k]
            signal = np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
            if SHAPES[k] == "burst":
                signal = np.where(t >= length // 2, 2 * signal, 0.2 * signal)
            frames.append(
                pd.DataFrame(
                    {
                        "seq": f"{SHAPES[k]}-{i:03d}",
                        "t": t,
                        "value": (signal + rng.normal(0, 0.2, length)).round(4),
                        "shape": SHAPES[k],
                        "split": "test" if i >= per_class - n_test else "train",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def write_csv_per_series(frame: pd.DataFrame, series_column: str, directory: Path) -> list[Path]:
    """One CSV per series, timestamps in ISO 8601 with offset; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for series, rows in frame.groupby(series_column, sort=True):
        path = directory / f"{series}.csv"
        out = rows.assign(ts=rows["ts"].map(lambda t: t.isoformat()))
        temp = path.with_suffix(".csv.tmp")
        out.to_csv(temp, index=False)
        temp.replace(path)
        paths.append(path)
    return paths


def write_frame_csv(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` as one CSV at ``path``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".csv.tmp")
    frame.to_csv(temp, index=False)
    temp.replace(path)
    return path


def write_samples(root: Path) -> dict[str, list[Path]]:
    """The bundled sample sets under ``root``: ``load/`` (forecast), ``activity/`` (per-step
    classify) and ``sequences/`` (whole-sequence classify, unequal lengths)."""
    return {
        "load": write_csv_per_series(load_series(), "sensor", root / "load"),
        "activity": write_csv_per_series(activity_series(), "device", root / "activity"),
        "sequences": [write_frame_csv(sequence_set(), root / "sequences" / "sequences.csv")],
    }
