"""Figure 3: seconds per epoch training from the window store vs the same windows in memory.

Same model (LSTM(32) -> Dense, batch 256, Adam), same windows, same seed. Each variant is
fitted twice, alternating (store, memory, store, memory), for two epochs; the first epoch
of a fit traces the graph, so the second epoch's time is the one compared.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from benchmarks.common import bench_config
from seqcast.input_pipeline import WindowStream, window_dataset
from seqcast.models import build_model
from seqcast.window_build import build_or_reuse
from seqcast.window_store import read_layout, read_split


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seconds.append(time.perf_counter() - self.started)


def figure_3(validated_uri: str, work: Path, stride: int = 4, rounds: int = 2) -> dict[str, Any]:
    config = bench_config(work / "fig3", window={"stride": stride})
    built = build_or_reuse(config, validated_uri, "fig3", "sensor")
    layout = read_layout(built.uri)
    spec = config.model
    train, val = read_split(built.uri, "train"), read_split(built.uri, "val")
    times: dict[str, list[float]] = {"store": [], "memory": []}
    for _ in range(rounds):
        for kind in ("store", "memory"):
            keras.utils.set_random_seed(spec.seed)
            model = build_model(layout, spec)
            timer = EpochTimer()
            if kind == "store":
                model.fit(
                    window_dataset(built.uri, "train", spec.batch_size, spec.shuffle_buffer),
                    validation_data=window_dataset(built.uri, "val", spec.batch_size),
                    epochs=2,
                    shuffle=False,
                    callbacks=[timer],
                    verbose=0,
                )
            else:
                model.fit(
                    train.x,
                    train.y,
                    batch_size=spec.batch_size,
                    validation_data=(val.x, val.y),
                    epochs=2,
                    shuffle=True,
                    callbacks=[timer],
                    verbose=0,
                )
            times[kind].append(timer.seconds[1])
    stream = WindowStream(built.uri, "train", spec.batch_size, spec.shuffle_buffer)
    started = time.perf_counter()
    sum(len(y) for _, y in stream.epoch(0))
    pipeline_only = time.perf_counter() - started
    store, memory = float(np.mean(times["store"])), float(np.mean(times["memory"]))
    return {
        "train_windows": len(train),
        "val_windows": len(val),
        "store_epoch_s": times["store"],
        "memory_epoch_s": times["memory"],
        "ratio": store / memory,
        "target": "<= 1.10",
        "pipeline_alone_epoch_s": pipeline_only,
        "pipeline_alone_windows_per_s": len(train) / pipeline_only,
    }
