"""Figure 3: seconds per epoch training from the window store vs the same windows in memory.

Same model (LSTM(32) -> Dense, batch 256, Adam), same windows, same seed. Each model
first fits one untimed epoch (graph tracing); then single epochs alternate between the
two (store, memory, then memory, store, ...) so that the load of a shared machine falls on
both alike, and the figure is the median of the paired ratios.
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


def figure_3(validated_uri: str, work: Path, stride: int = 4, pairs: int = 4) -> dict[str, Any]:
    config = bench_config(work / "fig3", window={"stride": stride})
    built = build_or_reuse(config, validated_uri, "fig3", "sensor")
    layout = read_layout(built.uri)
    spec = config.model
    train, val = read_split(built.uri, "train"), read_split(built.uri, "val")
    streamed = {
        "x": window_dataset(built.uri, "train", spec.batch_size, spec.shuffle_buffer),
        "validation_data": window_dataset(built.uri, "val", spec.batch_size),
        "shuffle": False,
    }
    in_memory = {
        "x": train.x,
        "y": train.y,
        "batch_size": spec.batch_size,
        "validation_data": (val.x, val.y),
        "shuffle": True,
    }
    models, timers = {}, {"store": EpochTimer(), "memory": EpochTimer()}
    for kind, data in (("store", streamed), ("memory", in_memory)):
        keras.utils.set_random_seed(spec.seed)
        models[kind] = build_model(layout, spec)
        models[kind].fit(**data, epochs=1, verbose=0)  # traces the graph; not timed
    epoch = 1
    for pair in range(pairs):
        # One epoch each, alternating which goes first, so load changes hit both alike.
        order = ("store", "memory") if pair % 2 == 0 else ("memory", "store")
        for kind in order:
            data = streamed if kind == "store" else in_memory
            models[kind].fit(
                **data, initial_epoch=epoch, epochs=epoch + 1, callbacks=[timers[kind]], verbose=0
            )
        epoch += 1
    stream = WindowStream(built.uri, "train", spec.batch_size, spec.shuffle_buffer)
    started = time.perf_counter()
    sum(len(y) for _, y in stream.epoch(0))
    pipeline_only = time.perf_counter() - started
    store, memory = timers["store"].seconds, timers["memory"].seconds
    ratios = [s / m for s, m in zip(store, memory, strict=True)]
    return {
        "train_windows": len(train),
        "val_windows": len(val),
        "store_epoch_s": store,
        "memory_epoch_s": memory,
        "pair_ratios": ratios,
        "ratio": float(np.median(ratios)),
        "ratio_of_fastest": min(store) / min(memory),
        "target": "<= 1.10",
        "pipeline_alone_epoch_s": pipeline_only,
        "pipeline_alone_windows_per_s": len(train) / pipeline_only,
    }
