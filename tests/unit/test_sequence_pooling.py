"""Long whole sequences (``window.max_steps``): the network averages blocks of k steps, never
counting padding; a sequence shorter than k keeps one step; k is in the layout, and the saved
model pools the same way when it classifies new sequences."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from seqcast.errors import ConfigError
from seqcast.modeling.networks import StepPool, build_model
from seqcast.serving.registry import LoadedModel
from seqcast.serving.sequence_prediction import classify_sequences
from seqcast.windows.build import build_windows
from seqcast.windows.sequences import padded_inputs, pool_size
from tests.unit.test_sequences import frame, sequence_config


def padded(lengths: list[int], steps: int, pad_value: float) -> np.ndarray:
    """(sequences, steps, 2): values 1, 2, 3, ... on each sequence's own steps, then
    ``pad_value`` with the valid column 0."""
    x = np.full((len(lengths), steps, 2), pad_value, np.float32)
    x[..., -1] = 0.0
    for i, n in enumerate(lengths):
        x[i, :n, 0] = np.arange(1, n + 1)
        x[i, :n, -1] = 1.0
    return x


def reference_pool(x: np.ndarray, k: int) -> np.ndarray:
    """Block means of each sequence's own steps, written out step by step."""
    out = np.zeros((len(x), -(-x.shape[1] // k), x.shape[2]), np.float32)
    for i, sequence in enumerate(x):
        own = sequence[sequence[:, -1] > 0.5, :-1]
        for b in range(-(-len(own) // k)):
            out[i, b, :-1] = own[b * k : (b + 1) * k].mean(axis=0)
            out[i, b, -1] = 1.0
    return out


def test_blocks_average_own_steps_and_a_short_sequence_keeps_one_step() -> None:
    pooled = np.asarray(StepPool(3)(padded([7, 2, 3], 8, 0.0)))
    assert pooled.shape == (3, 3, 2)  # ceil(8 / 3) steps
    # 1..7 in blocks [1 2 3] [4 5 6] [7]; 1..2 shorter than k: one step; 1..3: one step.
    np.testing.assert_allclose(pooled[0], [[2.0, 1.0], [5.0, 1.0], [7.0, 1.0]])
    np.testing.assert_allclose(pooled[1], [[1.5, 1.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(pooled[2], [[2.0, 1.0], [0.0, 0.0], [0.0, 0.0]])


def test_pooling_ignores_padding_values_and_length() -> None:
    lengths = [7, 2, 12, 1]
    reference = np.asarray(StepPool(3)(padded(lengths, 12, 0.0)))
    np.testing.assert_allclose(reference, reference_pool(padded(lengths, 12, 0.0), 3))
    for pad_value, steps in ((999.0, 12), (-5e6, 12), (999.0, 20)):
        pooled = np.asarray(StepPool(3)(padded(lengths, steps, pad_value)))
        np.testing.assert_array_equal(pooled[:, : reference.shape[1]], reference)
        assert not pooled[:, reference.shape[1] :].any()  # extra blocks: padding only
    # Still a prefix of real steps then padding: the right-padded mask cuDNN accepts.
    valid = reference[..., -1]
    assert all((np.diff(row) <= 0).all() for row in valid)


def test_a_pooled_network_ignores_padding() -> None:
    _, _, layout = build_windows(frame(n_classes=2), sequence_config(), "seq")
    model = build_model(dataclasses.replace(layout, pool=3), sequence_config().model)
    assert any(isinstance(layer, StepPool) for layer in model.layers)
    rng = np.random.default_rng(0)
    x = padded([3, 7, 12], 12, 0.0)
    x[..., 0] = np.where(x[..., -1] > 0, rng.normal(size=x.shape[:2]), 0.0)
    reference = model.predict(x, verbose=0)
    for pad_value, extra in ((999.0, 0), (0.0, 9), (-999.0, 9)):
        other = np.concatenate([x, np.zeros((3, extra, 2), np.float32)], axis=1)
        other[..., 0] = np.where(other[..., -1] > 0, other[..., 0], pad_value)
        np.testing.assert_allclose(model.predict(other, verbose=0), reference, atol=1e-6)


def test_the_layout_records_k_from_the_longest_sequence() -> None:
    data = frame(n_classes=2)  # 5 to 12 steps
    _, _, layout = build_windows(data, sequence_config(window={"max_steps": 4}), "seq")
    assert layout.lookback == 12 and layout.pool == 3  # ceil(12 / 4)
    for window, pool in (({}, 1), ({"max_steps": None}, 1), ({"max_steps": 5}, 3)):
        _, _, other = build_windows(data, sequence_config(window=window), "seq")
        assert other.pool == pool
    assert pool_size(1344, 256) == 6 and pool_size(256, 256) == 1 and pool_size(257, 256) == 2
    with pytest.raises(ValueError, match="max_steps"):
        pool_size(10, 0)


def test_max_steps_is_refused_for_step_windows() -> None:
    from seqcast.config import config_from_dict

    with pytest.raises(ConfigError, match="window.max_steps. applies to window.per=sequence"):
        config_from_dict(
            {
                "name": "steps",
                "source": {"path": "x.csv", "target": ["y"]},
                "window": {"max_steps": 64},
            }
        )


def test_prediction_pools_new_sequences_with_the_trained_k(tmp_path: Path) -> None:
    data = frame(n_classes=2)
    config = sequence_config(window={"max_steps": 4})
    _, scaler, layout = build_windows(data, config, "seq")
    assert layout.pool == 3
    trained = build_model(layout, config.model)
    trained.save(tmp_path / "model.keras")
    # As the registry loads a champion.
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True, compile=False)
    champion = LoadedModel(version="v", model=loaded, scaler=scaler, layout=layout, metrics={})
    new = data.sort_values(["seq", "t"])
    result = classify_sequences(
        new, champion, lambda x: loaded.predict(x, verbose=0), "seq"
    ).set_index("seq")

    # By hand: scale, pad to the trained length, pool blocks of 3, then the same weights
    # without a pooling layer.
    unpooled = build_model(dataclasses.replace(layout, pool=1), config.model)
    unpooled.set_weights(trained.get_weights())
    ids = sorted(new["seq"].unique())
    inputs = np.stack(
        [
            padded_inputs(
                scaler.transform(new.loc[new["seq"] == s, ["value"]].to_numpy(np.float32), s),
                layout.lookback,
            )
            for s in ids
        ]
    )
    expected = unpooled.predict(reference_pool(inputs, 3), verbose=0)
    got = result.loc[ids, [f"probability_{c}" for c in layout.classes]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    unpooled_outputs = unpooled.predict(inputs, verbose=0)  # without pooling: other numbers
    assert not np.allclose(got, unpooled_outputs, atol=1e-4)
