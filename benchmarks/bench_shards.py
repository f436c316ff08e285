"""Figure 6: sharded window build + batch prediction, local Dask cluster vs one thread.

2,000 series x 2,000 steps (the 10x set). Each side runs in a fresh process
(`benchmarks.shard_run`): the thread runner with one worker thread, then a local Dask
cluster of 2 worker processes x 1 thread. Both run the same subflows the nightly and
prediction flows call, on the same shards (``SERIES_PER_SHARD``, default 1000: 2 shards),
so their windows must be byte-identical; the figure checks that too. Peak memory per worker
is measured again on half the series (same shard size): it must not grow with the series.
Also per-series costs, and an estimate for 100,000 series with figure 3's training rate.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import make_frame, write_validated

REPO = Path(__file__).resolve().parents[1]
SERIES_PER_SHARD = int(os.environ.get("SEQCAST_BENCH_SERIES_PER_SHARD", "1000"))
"""Shard size of figure 6: one shard per worker at 2,000 series (see benchmarks/README.md)."""
RESULTS = Path(__file__).parent / "results.json"


def _side(
    side: str,
    validated: str,
    work: Path,
    n_series: int,
    rows: int,
    repeats: int,
    series_per_shard: int,
) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.shard_run", side, validated, str(work)]
        + [str(n_series), str(rows), str(repeats), str(series_per_shard)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"figure 6 {side} side failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _training_windows_per_s() -> float | None:
    """Training throughput of figure 3 (LSTM(32), store input), from the recorded results."""
    if not RESULTS.exists():
        return None
    figure = json.loads(RESULTS.read_text()).get("figure_3")
    if not figure:
        return None
    return figure["train_windows"] / statistics.median(figure["store_epoch_s"])


def figure_6(
    work: Path,
    n_series: int = 2000,
    n_steps: int = 2000,
    repeats: int = 2,
    series_per_shard: int = SERIES_PER_SHARD,
) -> dict:
    """Wall seconds of window build + prediction on each runner, speed-up, memory, costs."""
    frame = make_frame(n_series=n_series, n_steps=n_steps, seed=6)
    rows = len(frame)
    validated = write_validated(frame, str(work / "validated-fig6.parquet"))
    del frame
    thread = _side("thread", validated, work, n_series, rows, repeats, series_per_shard)
    dask = _side("dask", validated, work, n_series, rows, repeats, series_per_shard)
    # Memory per worker must not grow with the series: half of them, same shard size.
    half = make_frame(n_series=n_series // 2, n_steps=n_steps, seed=7)
    half_rows = len(half)
    half_uri = write_validated(half, str(work / "validated-fig6-half.parquet"))
    del half
    dask_half = _side(
        "dask", half_uri, work / "half", n_series // 2, half_rows, 1, series_per_shard
    )
    pairs = list(zip(thread["runs"], dask["runs"], strict=True))
    speedups = [t["total_s"] / d["total_s"] for t, d in pairs]
    same = all(t["windows_sha256"] == d["windows_sha256"] for t, d in pairs)
    last_t, last_d = thread["runs"][-1], dask["runs"][-1]
    same_predictions = (
        pd.read_parquet(last_t["predictions_uri"])
        .drop(columns=["flow_run_id", "model_version"])
        .equals(
            pd.read_parquet(last_d["predictions_uri"]).drop(
                columns=["flow_run_id", "model_version"]
            )
        )
    )
    for side in (thread, dask, dask_half):
        for run in side["runs"]:
            run.pop("windows_sha256")
    warm = thread["runs"][-1]
    per_series = {
        "window_build_s": warm["window_s"] / n_series,
        "prediction_s": warm["predict_s"] / n_series,
        "train_windows": warm["windows_by_split"]["train"] / n_series,
    }
    train_rate = _training_windows_per_s()
    estimate: dict[str, Any] = {
        "series": 100_000,
        "window_build_s_one_thread": per_series["window_build_s"] * 100_000,
        "prediction_s_one_thread": per_series["prediction_s"] * 100_000,
        "window_build_and_prediction_s_dask_2_workers": last_d["total_s"] / n_series * 100_000,
    }
    if train_rate:
        per_series["training_s_per_epoch"] = per_series["train_windows"] / train_rate
        estimate["training_windows_per_s"] = train_rate
        estimate["training_s_per_epoch"] = per_series["training_s_per_epoch"] * 100_000
    return {
        "series": n_series,
        "steps": n_steps,
        "thread_1_worker": thread,
        "dask_2_workers": dask,
        "speedup_per_repeat": speedups,
        "speedup": speedups[-1],
        "speedup_cold": speedups[0],
        "target": ">= 1.6",
        "worker_peak_rss_mib_half_series": dask_half["worker_peak_rss_mib"],
        "worker_peak_ratio_vs_half_series": max(dask["worker_peak_rss_mib"])
        / max(dask_half["worker_peak_rss_mib"]),
        "same_windows": same,
        "same_predictions": same_predictions,
        "per_series": per_series,
        "estimate_100k_series": estimate,
    }
