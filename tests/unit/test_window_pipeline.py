"""The training input pipeline: every window once per epoch, shuffled, in bounded memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from seqcast.config import PipelineConfig, config_from_dict
from seqcast.data.sample import load_series
from seqcast.errors import DataContractError
from seqcast.io import storage
from seqcast.modeling.networks import build_model
from seqcast.modeling.training import train
from seqcast.serving.future_inputs import covariate_inputs
from seqcast.serving.prediction import latest_windows, predict_frame
from seqcast.serving.registry import LoadedModel
from seqcast.windows import input_pipeline
from seqcast.windows.input_pipeline import (
    WindowStream,
    fit_arguments,
    stream_windows,
    whole_batch,
    window_dataset,
)
from seqcast.windows.step import WindowsBuilt, build_or_reuse
from seqcast.windows.store import read_layout, read_manifest, read_scaler, read_split
from tests.conftest import arithmetic_frame


def arithmetic_store(
    tmp_path: Path, n_series: int = 5, n_steps: int = 120, block_series: int = 2, **window: object
) -> tuple[PipelineConfig, WindowsBuilt]:
    """Series s holds 1000*s + t (unscaled), so a window is named by its first input value."""
    frame = arithmetic_frame(n_series, n_steps)
    frame["promo"] = (frame.groupby("id").cumcount() % 7 == 0).astype(float)
    uri = str(tmp_path / "validated.parquet")
    storage.write_frame(frame, uri)
    config = config_from_dict(
        {
            "name": "arith",
            "data_root": str(tmp_path / "root"),
            "source": {
                "path": "unused",
                "series_id": "id",
                "target": ["y"],
                "future_features": ["promo"],
            },
            "window": {"lookback": 6, "horizon": 2, "normalize": "none", **window},
            "model": {"units": [4], "epochs": 2, "batch_size": 16, "learning_rate": 1e-4},
        }
    )
    # Blocks of a few series: an epoch has to mix windows from several blocks.
    built = build_or_reuse(config, uri, "fp", "id", block_rows=block_series * n_steps)
    return config, built


def window_ids(x: np.ndarray) -> np.ndarray:
    return x[:, 0, 0].astype(np.int64)  # the first input value names the window


def _recorded(inputs: dict, y: tf.Tensor, seen: list) -> tuple[dict, tf.Tensor]:
    """Pass a batch through unchanged, noting the ids of its windows as the model gets them."""

    def note(x: tf.Tensor) -> np.int64:
        seen.append(x.numpy()[:, 0, 0])
        return np.int64(0)

    done = tf.py_function(note, [inputs["window"]], tf.int64)
    with tf.control_dependencies([done]):
        return {k: tf.identity(v) for k, v in inputs.items()}, tf.identity(y)


def test_streamed_training_sees_every_training_window_once_per_epoch(tmp_path: Path) -> None:
    config, built = arithmetic_store(tmp_path)
    expected = np.sort(window_ids(read_split(built.uri, "train").x))
    seen: list[np.ndarray] = []
    streamed = stream_windows(built.uri, "train", batch_size=16, shuffle_buffer=100, seed=3)
    recorded = dataclasses.replace(
        streamed, dataset=streamed.dataset.map(lambda inputs, y: _recorded(inputs, y, seen))
    )
    val = stream_windows(built.uri, "val", batch_size=16)
    model = build_model(read_layout(built.uri), config.model)
    model.fit(**fit_arguments(recorded, val, batch_size=16), epochs=2, verbose=0)
    ids = np.concatenate(seen).astype(np.int64)
    # What the model got, in order; the pipeline may have read ahead into a third epoch.
    assert len(ids) >= 2 * len(expected)
    first, second = ids[: len(expected)], ids[len(expected) : 2 * len(expected)]
    np.testing.assert_array_equal(np.sort(first), expected)  # each window exactly once
    np.testing.assert_array_equal(np.sort(second), expected)
    assert not np.array_equal(first, second)  # a new order every epoch
    assert not np.array_equal(first, np.sort(first))  # and not the stored order


def test_the_shuffle_buffer_bounds_what_is_held(tmp_path: Path) -> None:
    _, built = arithmetic_store(tmp_path, n_series=8, block_series=1)
    stream = WindowStream(built.uri, "train", batch_size=16, shuffle_buffer=40, seed=0)
    block_windows = max(b["windows"]["train"] for b in read_manifest(built.uri)["blocks"])
    batches = list(stream.epoch(0))
    sizes = [len(y) for _, y in batches]
    assert sizes[:-1] == [16] * (len(sizes) - 1) and 0 < sizes[-1] <= 16
    assert len(sizes) == stream.n_batches
    ids = np.concatenate([window_ids(x["window"]) for x, _ in batches])
    assert len(ids) == len(np.unique(ids)) == stream.n_windows
    assert stream.n_windows > 4 * (40 + block_windows)  # the bound is well below the split
    assert stream.peak_pooled <= 40 + block_windows


def test_order_is_reproducible_from_seed_and_epoch(tmp_path: Path) -> None:
    _, built = arithmetic_store(tmp_path)

    def order(seed: int, epoch: int) -> np.ndarray:
        stream = WindowStream(built.uri, "train", batch_size=8, shuffle_buffer=50, seed=seed)
        return np.concatenate([window_ids(x["window"]) for x, _ in stream.epoch(epoch)])

    np.testing.assert_array_equal(order(1, 0), order(1, 0))
    assert not np.array_equal(order(1, 0), order(1, 1))
    assert not np.array_equal(order(1, 0), order(2, 0))
    resumed = window_dataset(built.uri, "train", 8, shuffle_buffer=50, seed=1, first_epoch=1)
    ids = np.concatenate([window_ids(x["window"].numpy()) for x, _ in resumed])
    np.testing.assert_array_equal(ids, order(1, 1))


def test_a_small_split_is_cut_once_and_streams_as_if_read_each_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, built = arithmetic_store(tmp_path)

    def epochs(stream: WindowStream) -> list[np.ndarray]:
        return [
            np.concatenate([window_ids(x["window"]) for x, _ in stream.epoch(e)]) for e in (0, 1)
        ]

    cached = WindowStream(built.uri, "train", batch_size=8, shuffle_buffer=10_000, seed=1)
    cached_val = WindowStream(built.uri, "val", batch_size=8)
    first = epochs(cached)
    assert cached._cache is not None and len(cached._cache) == len(cached.blocks)
    monkeypatch.setattr(input_pipeline, "CACHE_WINDOWS", 0)  # read the store every epoch
    read = WindowStream(built.uri, "train", batch_size=8, shuffle_buffer=10_000, seed=1)
    assert read._cache is None
    for a, b in zip(first, epochs(read), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(*first)  # still reshuffled every epoch
    val = epochs(WindowStream(built.uri, "val", batch_size=8))
    for a, b in zip(epochs(cached_val), val, strict=True):
        np.testing.assert_array_equal(a, b)


def test_without_a_shuffle_buffer_windows_come_in_stored_order(tmp_path: Path) -> None:
    _, built = arithmetic_store(tmp_path)
    stored = read_split(built.uri, "val")
    dataset = window_dataset(built.uri, "val", batch_size=7)
    batches = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([x["window"] for x, _ in batches]), stored.x)
    np.testing.assert_array_equal(np.concatenate([x["future"] for x, _ in batches]), stored.future)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), stored.y)


def test_a_small_split_is_read_whole_in_stored_order(tmp_path: Path) -> None:
    _, built = arithmetic_store(tmp_path, n_series=3, block_series=1, calendar=["hour_of_day"])
    stored = read_split(built.uri, "val")
    val = stream_windows(built.uri, "val", batch_size=7)
    held = whole_batch(val, most=len(stored))
    assert held is not None
    inputs, y = held
    assert isinstance(inputs, dict)
    np.testing.assert_array_equal(inputs["window"], stored.x)  # every block, stored order
    np.testing.assert_array_equal(inputs["future"], stored.future)
    np.testing.assert_array_equal(y, stored.y)
    assert whole_batch(val, most=len(stored) - 1) is None  # too many: Keras's loop
    assert whole_batch(stored, most=len(stored) - 1) is None
    assert whole_batch(stored, most=len(stored)) is not None


def test_a_streamed_validation_split_has_whole_epochs(tmp_path: Path) -> None:
    """Keras validates on ``steps`` batches of the endless validation dataset: they must
    hold the split once, a smaller last batch included, and the next ``steps`` batches the
    split again (the last batch used to be filled up with the next pass's first windows)."""
    _, built = arithmetic_store(tmp_path)
    stored = read_split(built.uri, "val")
    assert len(stored) % 7  # a smaller last batch
    val = stream_windows(built.uri, "val", batch_size=7)
    batches = list(val.dataset.take(2 * val.steps).as_numpy_iterator())
    for epoch in (batches[: val.steps], batches[val.steps :]):
        np.testing.assert_array_equal(np.concatenate([x["window"] for x, _ in epoch]), stored.x)
        np.testing.assert_array_equal(np.concatenate([y for _, y in epoch]), stored.y)
    train = stream_windows(built.uri, "train", batch_size=7, shuffle_buffer=64)
    sizes = [len(y) for _, y in train.dataset.take(2 * train.steps).as_numpy_iterator()]
    assert set(sizes) == {7}  # training batches run on across epochs, all full


def test_no_window_dataset_runs_the_tf_data_autotuner(tmp_path: Path) -> None:
    """Nothing in them is tuned, and freeing an iterator waited for the autotuner's thread:
    ``model.fit`` returned 0.3-0.45 s after its last epoch in a quarter of small fits."""
    _, built = arithmetic_store(tmp_path)
    datasets = [
        stream_windows(built.uri, "train", batch_size=7, shuffle_buffer=64).dataset,
        stream_windows(built.uri, "val", batch_size=7).dataset,
        window_dataset(built.uri, "test", batch_size=7),
    ]
    for dataset in datasets:
        assert dataset.options().autotune.enabled is False
        assert len(list(dataset.take(3))) == 3  # and they still stream


def test_what_a_consumer_writes_into_a_batch_never_reaches_the_next_epoch(
    tmp_path: Path,
) -> None:
    """TensorFlow may write an op's output into the memory of an array the generator
    yielded (tf.data does not copy it). Batches that were views of the cached blocks were
    so overwritten: on a loaded machine validation scored growing garbage from the second
    epoch on. Here the consumer scribbles on every batch; the next epoch is still the split."""
    _, built = arithmetic_store(tmp_path)
    stored = read_split(built.uri, "val")
    for shuffle_buffer in (None, 64):
        stream = WindowStream(built.uri, "val", batch_size=7, shuffle_buffer=shuffle_buffer)
        for inputs, y in stream.epoch(0):
            inputs["window"][...] = -1.0  # what buffer forwarding does
            y[...] = -1.0
        again = list(stream.epoch(0))
        windows = np.concatenate([x["window"] for x, _ in again])
        targets = np.concatenate([y for _, y in again])
        order = np.argsort(windows[:, 0, 0])  # the stored order, whoever shuffled it
        np.testing.assert_array_equal(windows[order], stored.x)
        np.testing.assert_array_equal(targets[order], stored.y)


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "in-memory"])
def test_a_model_with_covariates_trains_and_predicts(tmp_path: Path, streamed: bool) -> None:
    config, built = arithmetic_store(tmp_path, calendar=["hour_of_day"])
    layout = read_layout(built.uri)
    if streamed:
        data = (
            stream_windows(built.uri, "train", 16, shuffle_buffer=64),
            stream_windows(built.uri, "val", 16),
        )
    else:
        data = (read_split(built.uri, "train"), read_split(built.uri, "val"))
    result = train(*data, layout, config.model)
    assert result.epochs_run == 2 and np.isfinite(result.best_val_loss)
    test = read_split(built.uri, "test")
    assert set(test.model_inputs()) == {"window", "future"}
    predicted = result.model.predict(test.model_inputs(), verbose=0)
    assert predicted["forecast"].shape == (len(test), 2, 1)  # (windows, horizon, targets)
    assert predicted["quantiles"].shape == (len(test), 2, 1, 3)  # + the 3 default levels
    assert isinstance(result.model.get_layer("future_scaling"), keras.layers.Normalization)


def test_batch_prediction_supplies_calendar_and_static_inputs(tmp_path: Path) -> None:
    frame = load_series(n_series=2, n_steps=120, seed=4)
    frame["capacity"] = frame["sensor"].str[-1].astype(float)
    uri = str(tmp_path / "validated.parquet")
    storage.write_frame(frame, uri)
    source = {
        "path": "unused",
        "series_id": "sensor",
        "target": ["load"],
        "features": ["temperature"],
        "static_features": ["capacity"],
    }
    config = config_from_dict(
        {
            "name": "cal",
            "data_root": str(tmp_path / "root"),
            "source": source,
            "window": {"lookback": 12, "horizon": 3, "calendar": ["hour_of_day"]},
            "model": {"units": [4], "epochs": 1},
        }
    )
    built = build_or_reuse(config, uri, "fp", "sensor")
    layout = read_layout(built.uri)
    result = train(
        read_split(built.uri, "train"), read_split(built.uri, "val"), layout, config.model
    )
    champion = LoadedModel("v1", result.model, read_scaler(built.uri), layout, {})
    predictions = predict_frame(frame, champion)
    assert len(predictions) == 2 * 3 and predictions["load"].notna().all()
    _, index = latest_windows(frame, champion)
    inputs = covariate_inputs(frame, frame.iloc[:0], index, layout)
    np.testing.assert_array_equal(inputs["static"][:, 0], [1.0, 2.0])  # sensor-1, sensor-2
    for k in range(3):  # forecast step k + 1 after each series' last observation
        hour = (pd.DatetimeIndex(index["origin"]) + pd.Timedelta(hours=k + 1)).hour.to_numpy()
        np.testing.assert_allclose(
            inputs["future"][:, k, 0], np.sin(2 * np.pi * hour / 24), atol=1e-6
        )
    with_holiday = dataclasses.replace(layout, future_columns=["holiday", *layout.future_columns])
    with pytest.raises(DataContractError, match="known-future columns \\['holiday'\\]"):
        predict_frame(frame, dataclasses.replace(champion, layout=with_holiday))


@pytest.mark.parametrize("root", ["local", "memory"])
def test_only_stale_staged_prediction_parts_are_removed(tmp_path: Path, root: str) -> None:
    import os
    import time

    from seqcast.serving.prediction import STALE_STAGING_SECONDS, remove_stale_staging

    base = str(tmp_path / "predictions") if root == "local" else f"memory://{tmp_path}/p"
    for name in (".staging-dead", ".staging-alive", "date=2026-11-27"):
        storage.write_bytes(storage.join(base, name, "part-00000.parquet"), b"x")
    if root == "local":
        old = time.time() - STALE_STAGING_SECONDS - 60
        os.utime(tmp_path / "predictions" / ".staging-dead" / "part-00000.parquet", (old, old))
    else:
        fs, path = storage.filesystem(storage.join(base, ".staging-dead", "part-00000.parquet"))
        fs.store[path].modified = fs.store[path].modified - pd.Timedelta(hours=7)
    assert remove_stale_staging(base) == [".staging-dead"]
    assert sorted(storage.listdir(base)) == [".staging-alive", "date=2026-11-27"]
