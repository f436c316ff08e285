"""Training beyond one device: the strategy chosen, the input shards, a mirrored fit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from seqcast.modeling.distribution import global_batch_size, training_strategy
from seqcast.windows.input_pipeline import WindowStream
from tests.unit.test_window_pipeline import arithmetic_store, window_ids

REPO = Path(__file__).resolve().parents[2]


def test_without_several_gpus_training_keeps_the_default_strategy() -> None:
    assert tf.config.list_logical_devices("GPU") == []  # this machine: CPU only
    for devices in (None, [], ["/cpu:0"]):
        strategy = training_strategy(devices)
        assert not isinstance(strategy, tf.distribute.MirroredStrategy)
        assert strategy.num_replicas_in_sync == 1
        assert global_batch_size(64, strategy) == 64


def test_input_shards_split_the_blocks_between_pipelines(tmp_path: Path) -> None:
    _, built = arithmetic_store(tmp_path, n_series=6, block_series=1)
    whole = WindowStream(built.uri, "train", batch_size=8)
    shards = [WindowStream(built.uri, "train", batch_size=8, shard=(i, 3)) for i in range(3)]
    ids = [np.concatenate([window_ids(x["window"]) for x, _ in s.epoch(0)]) for s in shards]
    everything = np.concatenate([window_ids(x["window"]) for x, _ in whole.epoch(0)])
    assert all(len(part) for part in ids)  # every pipeline has work
    assert sum(s.n_windows for s in shards) == whole.n_windows
    assert not set(ids[0]) & set(ids[1]) and not set(ids[1]) & set(ids[2])
    np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.sort(everything))
    assert not set(shards[0].blocks) & set(shards[1].blocks)  # whole blocks (files) per shard
    with pytest.raises(ValueError, match="shard"):
        WindowStream(built.uri, "train", batch_size=8, shard=(3, 3))


MIRRORED_FIT = textwrap.dedent(
    """
    import json, math, sys
    from pathlib import Path
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from seqcast.modeling.distribution import global_batch_size, training_strategy
    from seqcast.windows.input_pipeline import stream_windows
    from seqcast.modeling.training import train
    from seqcast.windows.store import read_layout
    from tests.unit.test_window_pipeline import arithmetic_store

    config, built = arithmetic_store(Path(sys.argv[1]))
    strategy = training_strategy(["/cpu:0", "/cpu:1"])
    batch = global_batch_size(8, strategy)
    result = train(
        stream_windows(built.uri, "train", batch, shuffle_buffer=64, strategy=strategy),
        stream_windows(built.uri, "val", batch, strategy=strategy),
        read_layout(built.uri),
        config.model,
        strategy=strategy,
    )
    print(json.dumps({
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "batch": batch,
        "mirrored_weights": all(
            isinstance(v.value, tf.distribute.DistributedValues)
            or "Mirrored" in type(v.value).__name__
            for v in result.model.trainable_variables
        ),
        "losses": result.history["loss"],
        "val_losses": result.history["val_loss"],
    }))
    """
)


@pytest.mark.slow
def test_a_mirrored_fit_trains_on_two_devices(tmp_path: Path) -> None:
    """Two logical CPUs stand in for two GPUs: the same code path MirroredStrategy takes.

    A subprocess, because logical devices must be set before TensorFlow initialises.
    """
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_FIT, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["strategy"] == "MirroredStrategy"
    assert report["replicas"] == 2 and report["batch"] == 16
    assert report["mirrored_weights"]
    assert len(report["losses"]) == 2
    assert all(np.isfinite(report["losses"])) and all(np.isfinite(report["val_losses"]))
