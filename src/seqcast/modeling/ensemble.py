"""The mean of several trained models' outputs, as one plain Keras model.

A search may keep its k best trials: averaging their forecasts usually beats the best
one alone. The ensemble is an ordinary functional model (the members as nested models and
an `Average` layer), saved as ``.keras`` and loaded with ``safe_mode`` like any other, so
evaluation, registry and prediction need no change.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras

from seqcast.io import storage
from seqcast.modeling.networks import PinballLoss, QuantileForecaster, model_quantiles


def load_member(uri: str) -> keras.Model:
    """A saved ``.keras`` model from a local path or fsspec URL."""
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "model.keras"
        local.write_bytes(storage.read_bytes(uri))
        return keras.saving.load_model(local, safe_mode=True)


def mean_ensemble(member_uris: list[str]) -> keras.Model:
    """One model whose output is the mean of the members' outputs.

    The members must take the same inputs (the same window layout) and give outputs of the
    same shape: (batch, horizon, n_targets) forecasts or (batch, n_classes) probabilities,
    or the same ``forecast`` and ``quantiles`` outputs (a quantile head), each averaged.

    Raises:
        ValueError: fewer than two members.
    """
    if len(member_uris) < 2:
        raise ValueError(f"an ensemble needs at least two members. Received: {member_uris}")
    members = [load_member(uri) for uri in member_uris]
    for index, member in enumerate(members):
        member.name = f"member_{index}"  # nested models need distinct names
    first = members[0]
    inputs: Any
    if isinstance(first.input, dict):
        inputs = {
            name: keras.Input(shape=tensor.shape[1:], name=name)
            for name, tensor in first.input.items()
        }
    else:
        inputs = keras.Input(shape=first.input.shape[1:], name="window")
    results = [member(inputs) for member in members]
    if isinstance(results[0], dict):
        # Members with a quantile head: point forecasts and quantiles averaged apart; a
        # mean of sorted quantile vectors is sorted, so they still never cross.
        outputs: Any = {
            key: keras.layers.Average(name=f"mean_{key}")([r[key] for r in results])
            for key in results[0]
        }
        model = QuantileForecaster(inputs, outputs, name="seqcast_ensemble")
        loss: Any = {"forecast": "mse", "quantiles": PinballLoss(model_quantiles(first))}
        metrics: Any = {"forecast": ["mae"]}
    else:
        outputs = keras.layers.Average(name="mean")(results)
        model = keras.Model(inputs, outputs, name="seqcast_ensemble")
        loss = first.loss
        metrics = ["mae"] if first.loss == "mse" else ["accuracy"]
    model.compile(optimizer=keras.optimizers.Adam(), loss=loss, metrics=metrics)
    # Built now, so a saved ensemble's optimizer state matches what loading builds.
    model.optimizer.build(model.trainable_variables)
    return model
