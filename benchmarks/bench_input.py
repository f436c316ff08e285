"""Figure 3: seconds per epoch training from the window store vs the same windows in memory.

Same model (LSTM(32) -> Dense, batch 256, Adam), same windows, same seed. The store side
is what the train task runs (`stream_windows` + `fit_arguments`); the memory side is
``model.fit`` on numpy arrays with ``shuffle=True``. Each side fits ``epochs`` epochs,
``rounds`` times, alternating which goes first; the first epoch of every fit traces the
graph and is not timed. The figure is the ratio of the median epoch times.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from benchmarks.common import bench_config
from seqcast.modeling.networks import build_model
from seqcast.windows.input_pipeline import WindowStream, fit_arguments, stream_windows
from seqcast.windows.step import build_or_reuse
from seqcast.windows.store import read_layout, read_split


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.seconds.append(time.perf_counter() - self.started)


def figure_3(
    validated_uri: str, work: Path, stride: int = 4, rounds: int = 2, epochs: int = 3
) -> dict[str, Any]:
    config = bench_config(work / "fig3", window={"stride": stride})
    built = build_or_reuse(config, validated_uri, "fig3", "sensor")
    layout = read_layout(built.uri)
    spec = config.model
    train, val = read_split(built.uri, "train"), read_split(built.uri, "val")
    times: dict[str, list[float]] = {"store": [], "memory": []}
    for round_ in range(rounds):
        order = ("store", "memory") if round_ % 2 == 0 else ("memory", "store")
        for kind in order:
            if kind == "store":  # exactly what the train task does
                data = fit_arguments(
                    stream_windows(built.uri, "train", spec.batch_size, spec.shuffle_buffer),
                    stream_windows(built.uri, "val", spec.batch_size),
                    spec.batch_size,
                )
            else:
                data = fit_arguments(train, val, spec.batch_size)
            keras.utils.set_random_seed(spec.seed)
            timer = EpochTimer()
            build_model(layout, spec).fit(**data, epochs=epochs, callbacks=[timer], verbose=0)
            times[kind].extend(timer.seconds[1:])  # the first epoch traces the graph
    stream = WindowStream(built.uri, "train", spec.batch_size, spec.shuffle_buffer)
    started = time.perf_counter()
    sum(len(y) for _, y in stream.epoch(0))
    pipeline_only = time.perf_counter() - started
    store, memory = float(np.median(times["store"])), float(np.median(times["memory"]))
    return {
        "train_windows": len(train),
        "val_windows": len(val),
        "store_epoch_s": times["store"],
        "memory_epoch_s": times["memory"],
        "ratio": store / memory,
        "ratio_of_fastest": min(times["store"]) / min(times["memory"]),
        "target": "<= 1.10",
        "pipeline_alone_epoch_s": pipeline_only,
        "pipeline_alone_windows_per_s": len(train) / pipeline_only,
    }
