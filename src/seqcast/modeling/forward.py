"""A network's forward pass for prediction and scoring: one traced function per model, fed in
fixed-size batches.

``keras.Model.predict`` builds a new function for each model it is called on and traces it
again for each batch shape: every prediction shard made TensorFlow warn about "excessive"
retracing (issue 14), and evaluation, which predicts one window-store block at a time
(issue 18), would trace once per block. `forward_function` traces once for any number of
rows; `batched_forecasts` feeds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from seqcast.windows.windowing import WindowArrays

PREDICT_BATCH = 1024
"""Rows per forward pass of a network."""


class _Forward:
    """``model(inputs, training=False)`` with the inputs in the order of ``model.inputs``.

    An object, not a closure: TensorFlow counts traces per function *code*, so the closures
    of several loaded models (shards on a Dask worker, runs in one process) would add up to
    its retracing warning; an object is counted on its own.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.names = [tensor.name for tensor in model.inputs]
        self.named = isinstance(model.input, dict)

    def __call__(self, *inputs: Any) -> Any:
        structured = dict(zip(self.names, inputs, strict=True)) if self.named else inputs[0]
        return self.model(structured, training=False)


def forward_function(model: Any) -> Callable[..., Any]:
    """``model``'s forward pass as one `tf.function`, traced once for any number of rows (the
    batch dimension is left open). It takes the model's inputs in the order of
    ``model.inputs``.
    """
    import tensorflow as tf  # where a network predicts: a statistical champion needs none

    spec = [
        tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=tensor.name)
        for tensor in model.inputs
    ]
    return cast(Callable[..., Any], tf.function(_Forward(model), input_signature=spec))


def batched_forecasts(
    model: Any, forward: Callable[..., Any], model_input: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """``model``'s outputs for ``model_input`` (an array, or a dict of arrays named like the
    model's inputs) through ``forward`` (its `forward_function`), in batches of
    `PREDICT_BATCH` rows: the point forecasts (or class probabilities) and, from a quantile
    head, the quantiles (rows, horizon, n_targets, n_quantiles), else None."""
    arrays = [
        np.asarray(model_input[t.name] if isinstance(model_input, dict) else model_input, t.dtype)
        for t in model.inputs
    ]
    rows = len(arrays[0])
    points, quantiles = [], []
    for start in range(0, rows, PREDICT_BATCH):
        out = forward(*(a[start : start + PREDICT_BATCH] for a in arrays))
        if isinstance(out, dict):  # a quantile head (`seqcast.modeling.networks`)
            quantiles.append(np.asarray(out["quantiles"]))
            out = out["forecast"]
        points.append(np.asarray(out))
    return np.concatenate(points), np.concatenate(quantiles) if quantiles else None


def window_forecaster(model: Any) -> Callable[[WindowArrays], tuple[np.ndarray, np.ndarray | None]]:
    """`batched_forecasts` of windows through one `forward_function` of ``model``, traced once
    for every block of windows it is given (evaluation and backtest score block by block)."""
    traced = forward_function(model)

    def forecast(windows: WindowArrays) -> tuple[np.ndarray, np.ndarray | None]:
        return batched_forecasts(model, traced, windows.model_inputs())

    return forecast
