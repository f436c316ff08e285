"""Figures 1 and 2: window build throughput vs the minimal reference; peak memory 1x vs 10x.

Also the numbers behind the on-disk layout choice: bytes and read throughput of the
store (series rows + window index, cut on the fly) against materialised windows
(fixed-size-list rows in large row groups, the previous layout).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.lib.stride_tricks import sliding_window_view

from benchmarks.common import HORIZON, LOOKBACK, VALUES, bench_config, make_frame, timed
from benchmarks.common import write_validated as write
from seqcast.windows.input_pipeline import WindowStream
from seqcast.windows.step import build_or_reuse

REPO = Path(__file__).resolve().parents[1]


def reference_windows(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every (lookback -> horizon) window of every series, the minimum way: one reshape, two
    sliding_window_view calls. Series have equal lengths here, which the reference exploits."""
    n_series = frame["sensor"].nunique()
    values = frame[VALUES].to_numpy(np.float32).reshape(n_series, -1, len(VALUES))
    x = sliding_window_view(values[:, :-HORIZON], LOOKBACK, axis=1)  # (S, W, F, lookback)
    y = sliding_window_view(values[:, LOOKBACK:, 0], HORIZON, axis=1)  # (S, W, horizon)
    x = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).reshape(-1, LOOKBACK * len(VALUES))
    return x, np.ascontiguousarray(y).reshape(-1, HORIZON)


def windows_table(x: np.ndarray, y: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "x": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1]),
            "y": pa.FixedSizeListArray.from_arrays(pa.array(y.reshape(-1)), y.shape[1]),
        }
    )


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def figure_1(frame: Any, validated_uri: str, work: Path) -> dict[str, Any]:
    """Windows/s written: our window step (from the validated file) vs the reference."""
    with timed() as ours_time:
        built = build_or_reuse(bench_config(work / "fig1"), validated_uri, "fig1", "sensor")
    ours_windows = sum(built.counts.values())
    with timed() as ref_time:
        x, y = reference_windows(frame)
        pq.write_table(windows_table(x, y), work / "reference.parquet")
    ref_windows = len(x)
    del x, y
    ours_rate = ours_windows / ours_time["seconds"]
    ref_rate = ref_windows / ref_time["seconds"]
    return {
        "ours": {
            "windows": ours_windows,
            "seconds": ours_time["seconds"],
            "windows_per_s": ours_rate,
            "bytes": directory_bytes(Path(built.uri)),
        },
        "reference": {
            "windows": ref_windows,
            "seconds": ref_time["seconds"],
            "windows_per_s": ref_rate,
            "bytes": (work / "reference.parquet").stat().st_size,
        },
        "ratio": ours_rate / ref_rate,
        "target": ">= 0.5",
        "store_uri": built.uri,
    }


def layout_comparison(frame: Any, store_uri: str, work: Path) -> dict[str, Any]:
    """Materialised windows (zstd, 65,536-row groups) vs our rows + index: size and reads."""
    path = work / "materialised.parquet"
    with timed() as write_time:
        x, y = reference_windows(frame)
        pq.write_table(windows_table(x, y), path, row_group_size=65_536, compression="zstd")
    n = len(x)
    del x, y
    with timed() as read_time:
        file = pq.ParquetFile(path)
        for group in range(file.num_row_groups):
            table = file.read_row_group(group)
            rows = table.num_rows
            table["x"].combine_chunks().flatten().to_numpy().reshape(rows, LOOKBACK, len(VALUES))
            table["y"].combine_chunks().flatten().to_numpy().reshape(rows, HORIZON, 1)
    stream = WindowStream(store_uri, "train", batch_size=256, shuffle_buffer=65_536)
    with timed() as stream_time:
        streamed = sum(len(y) for _, y in stream.epoch(0))
    return {
        "materialised": {
            "bytes": path.stat().st_size,
            "write_windows_per_s": n / write_time["seconds"],
            "read_windows_per_s": n / read_time["seconds"],
            "note": "read = row groups in file order, no shuffle",
        },
        "rows_plus_index": {
            "bytes": directory_bytes(Path(store_uri)),
            "read_windows_per_s": streamed / stream_time["seconds"],
            "note": "read = WindowStream epoch: blocks in random order, cut, 65,536-window "
            "shuffle buffer, batches of 256",
        },
    }


def peak(validated_uri: str, data_root: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.window_peak", validated_uri, str(data_root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def figure_2(validated_1x: str, work: Path, series_10x: int = 2000) -> dict[str, Any]:
    """Peak RSS of the window step in a fresh process on 1x and 10x the series."""
    frame_10x = make_frame(n_series=series_10x, seed=10)
    validated_10x = write(frame_10x, str(work / "validated-10x.parquet"))
    del frame_10x
    one = peak(validated_1x, work / "fig2-1x")
    ten = peak(validated_10x, work / "fig2-10x")
    return {
        "1x": one,
        "10x": ten,
        "ratio": ten["peak_rss_mib"] / one["peak_rss_mib"],
        "target": "<= 1.5",
        "10x_windows_per_s": ten["windows"] / ten["seconds"],
    }
