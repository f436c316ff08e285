"""Per-epoch overhead of seqcast's training loop on tiny data (issue 12).

On a small series an epoch is a handful of batches, so whatever the loop adds per epoch
(the streamed input pipeline, the checkpoint for resume, the epoch report and the
Prefect progress artifact) can cost more than the training itself. Same windows, same
model (LSTM(32) -> Dense), same batch size (an epoch of 6 batches), same seed:

- ``bare``: ``model.fit`` on the numpy arrays, as a tutorial script does;
- ``stream``: ``model.fit`` on the window store's streamed input (`stream_windows`);
- ``seqcast``: `seqcast.modeling.training.train` as the train task calls it: streamed
  input, early stopping, the resume checkpoint in ``backup_dir``, the epoch report;
- ``progress``: one update of a Prefect progress artifact (the train task's epoch hook),
  timed on Prefect's ephemeral test server.

An epoch's time is the gap between successive epoch ends (so it includes every callback
that runs before the report); the first epoch (graph tracing) is dropped and the median
of the rest is reported.

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python -m benchmarks.bench_epoch_overhead
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from benchmarks.common import bench_config, load_average, make_frame, write_validated
from seqcast.modeling.networks import build_model
from seqcast.modeling.training import train
from seqcast.windows.input_pipeline import fit_arguments, stream_windows
from seqcast.windows.step import build_or_reuse
from seqcast.windows.store import read_layout, read_split

BATCHES_PER_EPOCH = 6


def _epoch_gaps(ends: list[float]) -> list[float]:
    return [b - a for a, b in zip(ends[1:], ends[2:], strict=False)]  # drop the traced epoch


def _progress_update_seconds(updates: int) -> float:
    from prefect import flow
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.testing.utilities import prefect_test_harness

    @flow
    def updating() -> float:
        artifact = create_progress_artifact(progress=0.0)
        started = time.perf_counter()
        for done in range(updates):
            update_progress_artifact(artifact, progress=100.0 * done / updates)
        return (time.perf_counter() - started) / updates

    with prefect_test_harness(server_startup_timeout=180):
        return float(updating())


def measure(work: Path, epochs: int = 30, rounds: int = 2) -> dict[str, Any]:
    """Median seconds per epoch of each loop, and the ratios to the bare fit."""
    frame = make_frame(1, n_steps=400)
    validated = write_validated(frame, str(work / "validated.parquet"))
    config = bench_config(work, patience=epochs, epochs=epochs, seed=0)
    built = build_or_reuse(config, validated, "tiny", "sensor")
    layout = read_layout(built.uri)
    train_split, val_split = read_split(built.uri, "train"), read_split(built.uri, "val")
    batch = -(-len(train_split) // BATCHES_PER_EPOCH)
    spec = config.model.model_copy(update={"batch_size": batch})
    times: dict[str, list[float]] = {}

    def bare_or_stream(kind: str) -> list[float]:
        ends: list[float] = []
        marker = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter())
        )
        if kind == "bare":
            data = fit_arguments(train_split, val_split, batch)
        else:
            data = fit_arguments(
                stream_windows(built.uri, "train", batch, spec.shuffle_buffer, spec.seed),
                stream_windows(built.uri, "val", batch),
                batch,
            )
        keras.utils.set_random_seed(spec.seed)
        model = build_model(layout, spec)
        model.fit(**data, epochs=epochs, callbacks=[marker], verbose=0)
        return _epoch_gaps(ends)

    def seqcast(backup: str) -> list[float]:
        ends: list[float] = []
        train(
            stream_windows(built.uri, "train", batch, spec.shuffle_buffer, spec.seed),
            stream_windows(built.uri, "val", batch),
            layout,
            spec,
            backup_dir=backup,
            on_epoch_end=lambda done, planned, metrics: ends.append(time.perf_counter()),
        )
        return _epoch_gaps(ends)

    for round_ in range(rounds):  # alternate the order: the machine is shared
        kinds = ("bare", "stream", "seqcast")
        for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
            if kind == "seqcast":
                with tempfile.TemporaryDirectory() as backup:
                    gaps = seqcast(backup)
            else:
                gaps = bare_or_stream(kind)
            times.setdefault(kind, []).extend(gaps)
    median = {kind: float(np.median(values)) for kind, values in times.items()}
    fastest = {kind: float(np.min(values)) for kind, values in times.items()}
    progress = _progress_update_seconds(20)
    return {
        "train_windows": len(train_split),
        "batch_size": batch,
        "batches_per_epoch": BATCHES_PER_EPOCH,
        "epochs_per_fit": epochs,
        "median_epoch_s": median,
        "fastest_epoch_s": fastest,
        "progress_update_s": progress,
        "seqcast_vs_bare": median["seqcast"] / median["bare"],
        "seqcast_with_progress_vs_bare": (median["seqcast"] + progress) / median["bare"],
        "fastest_seqcast_vs_bare": fastest["seqcast"] / fastest["bare"],
        "load_average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(json.dumps(measure(Path(work), args.epochs, args.rounds), indent=2))


if __name__ == "__main__":
    main()
