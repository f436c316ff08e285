"""Shared benchmark data and settings: the issue's 1x set is 200 series x 2,000 steps x 4 columns.

The data is generated, not downloaded: hourly load with daily/weekly cycles driven by
three covariates (temperature, humidity, price), vectorised over series so 10x takes
seconds. ``write_validated`` writes it as the window step's input (the typed, sorted
table the validate step produces); ``write_csvs`` as the flow's source files.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seqcast.config import PipelineConfig, config_from_dict
from seqcast.io import storage

START = pd.Timestamp("2024-01-01", tz="UTC")
VALUES = ["load", "temperature", "humidity", "price"]
LOOKBACK, HORIZON = 48, 24


def make_frame(n_series: int, n_steps: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Columns sensor, ts, load, temperature, humidity, price; sorted by (sensor, ts)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n_steps)
    weather = np.zeros((n_series, n_steps))
    shocks = rng.normal(0.0, 0.6, (n_series, n_steps))
    for t in range(1, n_steps):  # AR(1) weather, vectorised over series
        weather[:, t] = 0.98 * weather[:, t - 1] + shocks[:, t]
    daily = np.sin(2 * np.pi * (hours % 24) / 24 - np.pi / 2)[None, :]
    weekend = np.where((hours // 24) % 7 >= 5, -0.25, 0.05)[None, :]
    level = rng.uniform(50.0, 500.0, (n_series, 1))
    temperature = 10.0 + 4.0 * daily + weather
    humidity = 60.0 - 2.0 * weather + rng.normal(0.0, 3.0, (n_series, n_steps))
    price = 30.0 + 5.0 * daily + rng.normal(0.0, 1.0, (n_series, n_steps))
    load = level * (1.0 + 0.3 * daily + weekend) + 1.5 * (temperature - 10.0) - 0.2 * price
    load += rng.normal(0.0, 0.02, (n_series, n_steps)) * level
    width = len(str(n_series))
    return pd.DataFrame(
        {
            "sensor": np.repeat([f"sensor-{i:0{width}d}" for i in range(n_series)], n_steps),
            "ts": np.tile(START + pd.to_timedelta(hours, unit="h"), n_series),
            "load": load.reshape(-1).round(3),
            "temperature": temperature.reshape(-1).round(3),
            "humidity": humidity.reshape(-1).round(3),
            "price": price.reshape(-1).round(3),
        }
    )


def write_validated(frame: pd.DataFrame, uri: str) -> str:
    """The window step's input, as the validate step writes it (row groups of 64,000)."""
    storage.write_frame(frame, uri)
    return uri


def write_csvs(frame: pd.DataFrame, directory: Path) -> Path:
    """One CSV per series with ISO 8601 timestamps, as `seqcast sample` writes them."""
    directory.mkdir(parents=True, exist_ok=True)
    for sensor, rows in frame.groupby("sensor", sort=True):
        rows.assign(ts=rows["ts"].map(pd.Timestamp.isoformat)).to_csv(
            directory / f"{sensor}.csv", index=False
        )
    return directory


def bench_config(data_root: Path, source: str = "unused", **model: Any) -> PipelineConfig:
    """The forecast pipeline every benchmark uses: lookback 48 -> horizon 24 of load."""
    window = model.pop("window", {})
    runner = model.pop("runner", {})
    return config_from_dict(
        {
            "name": "bench",
            "data_root": str(data_root),
            "source": {
                "path": source,
                "timestamp": "ts",
                "series_id": "sensor",
                "target": ["load"],
                "features": VALUES[1:],
            },
            # One model, as the bare script trains (normalize=auto would train two variants).
            "window": {
                "lookback": LOOKBACK,
                "horizon": HORIZON,
                "stride": 1,
                "normalize": "series",
                **window,
            },
            "split": {"by": "time", "val": 0.1, "test": 0.2},
            "model": {"units": [32], "batch_size": 256, "learning_rate": 1e-3, **model},
            "runner": runner,
        }
    )


def peak_rss_mib() -> float:
    """Peak resident memory of this process image so far, in MiB.

    Linux's VmHWM, not ``getrusage().ru_maxrss``: the latter carries the parent's peak
    across fork and exec, so a child started by a big parent would report the parent's.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - started


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def save(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))


# The runners the mapped-step benchmarks (ingest_mapped, challengers_mapped) compare.
RUNNERS = {
    "threads-1": {"kind": "thread", "n_workers": 1},
    "threads-2": {"kind": "thread", "n_workers": 2},
    "dask-2": {"kind": "dask", "n_workers": 2, "threads_per_worker": 1},
}


@contextmanager
def running_cluster() -> Iterator[str]:
    """A local Dask cluster of ``dask-2``'s shape; its scheduler's address."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
    ) as cluster:
        yield cluster.scheduler_address
