"""The network: stacked LSTM or GRU layers and a head for forecasting or classification.

Recurrent layers keep Keras' defaults (tanh, sigmoid, no recurrent dropout, not
unrolled, GRU ``reset_after=True``) so that on a GPU TensorFlow runs them with the fused
cuDNN kernel; dropout is applied between layers. A setting that breaks eligibility
(``recurrent_dropout``) logs a warning saying so.

Forecasting has two options for series that trend or shift level, where a z-score fitted
on the training period cannot extrapolate:

- window-relative inputs: each window's target columns are expressed relative to their
  last observed value, and the network predicts the change from it;
- residual: the network learns a correction to a naive forecast (seasonal naive when a
  season is set, else the last value), its head starting at zero so training starts from
  the baseline (as the TensorFlow time-series tutorial's residual wrapper does).

Both are layers of the saved model (registered, no Lambda), so a loaded model needs no
extra code to predict.

A forecast model with ``model.quantiles`` has a second output, ``quantiles``
(batch, horizon, n_targets, n_quantiles), beside the unchanged point forecast: a head on
the trunk's features behind `StopGradient`, trained with the pinball loss, so it neither
moves the recurrent layers nor the point head (the point forecast and its MSE training are
exactly those of a model without it). `MonotoneQuantiles` builds the quantiles outward from
the point forecast with non-negative offsets, so they never cross.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
from keras import ops

from seqcast.config import ModelSpec
from seqcast.windows.windowing import WindowLayout

logger = logging.getLogger(__name__)

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@keras.saving.register_keras_serializable(package="seqcast")
class RelativeToLast(keras.layers.Layer):
    """Subtract each window's last value from its first ``n_targets`` columns.

    (batch, lookback, features) -> (batch, lookback, features)
    """

    def __init__(self, n_targets: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_targets = n_targets

    def call(self, window: Any) -> Any:
        targets = window[:, :, : self.n_targets]
        rest = window[:, :, self.n_targets :]
        return ops.concatenate([targets - targets[:, -1:, :], rest], axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_targets": self.n_targets}


@keras.saving.register_keras_serializable(package="seqcast")
class NaiveForecast(keras.layers.Layer):
    """The naive forecast read from the input window: (batch, horizon, n_targets).

    ``season`` None: the last value repeated; else each target step takes the value one
    season earlier (``season`` <= lookback).
    """

    def __init__(
        self, n_targets: int, horizon: int, season: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.n_targets, self.horizon, self.season = n_targets, horizon, season

    def call(self, window: Any) -> Any:
        targets = window[:, :, : self.n_targets]  # (batch, lookback, n_targets)
        if self.season is None:
            return ops.repeat(targets[:, -1:, :], self.horizon, axis=1)
        lookback = targets.shape[1]
        steps = [lookback - self.season + (h % self.season) for h in range(self.horizon)]
        return ops.take(targets, steps, axis=1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_targets": self.n_targets,
            "horizon": self.horizon,
            "season": self.season,
        }


@keras.saving.register_keras_serializable(package="seqcast")
class StepMask(keras.layers.Layer):
    """Split a padded sequence window into its inputs and a Keras mask.

    (batch, steps, features + 1) -> (batch, steps, features), masked where the last
    column (`seqcast.windows.sequences.VALID_COLUMN`) is 0. The recurrent layers after it
    skip masked steps, so padding values never matter.

    Sequences are padded on the right: with a mask, Keras runs the fused cuDNN GRU/LSTM
    kernel only for right-padded masks (keras/src/backend/tensorflow/rnn.py, Keras 3.15:
    ``_is_sequence_right_padded`` / ``_assert_valid_mask``, used by ``gru``/``lstm`` there
    and by keras/src/layers/rnn/gru.py, lstm.py when ``use_cudnn="auto"``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, window: Any) -> Any:
        return window[:, :, :-1]

    def compute_mask(self, window: Any, mask: Any = None) -> Any:
        return window[:, :, -1] > 0.5  # (batch, steps) True on real steps

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        features = input_shape[-1]
        return (*input_shape[:-1], None if features is None else features - 1)


@keras.saving.register_keras_serializable(package="seqcast")
class StepPool(keras.layers.Layer):
    """Average each block of ``k`` consecutive steps of a right-padded sequence window.

    (batch, steps, features + 1) -> (batch, ceil(steps / k), features + 1): block b holds
    the mean of the sequence's own steps among steps b*k .. b*k + k - 1 (the last column,
    `seqcast.windows.sequences.VALID_COLUMN`, says which are its own: padding never enters
    a mean, whatever its values) and 1 in that column when the block holds any of them.
    A sequence of n steps becomes ceil(n / k) steps (one when n < k), still a prefix
    followed by padding, so `StepMask` after it gives the right-padded mask that keeps the
    fused cuDNN kernel eligible. Cost of the recurrence: steps / k. ``k`` is the layout's
    ``pool`` (``window.max_steps``); the layer is part of the saved model, so prediction
    pools exactly as training did.
    """

    def __init__(self, k: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"`k` must be a positive integer. Received: k={k}")
        self.k = k

    def call(self, window: Any) -> Any:
        k, features = self.k, window.shape[-1] - 1
        steps = ops.shape(window)[1]
        blocks = (steps + k - 1) // k
        window = ops.pad(window, [[0, 0], [0, blocks * k - steps], [0, 0]])  # valid 0
        own = window[:, :, -1:] > 0.5  # (batch, blocks * k, 1)
        values = ops.where(own, window[:, :, :-1], ops.zeros_like(window[:, :, :-1]))
        sums = ops.sum(ops.reshape(values, (-1, blocks, k, features)), axis=2)
        counts = ops.sum(ops.reshape(ops.cast(own, window.dtype), (-1, blocks, k, 1)), axis=2)
        means = sums / ops.maximum(counts, 1.0)  # (batch, blocks, features)
        return ops.concatenate([means, ops.cast(counts > 0, window.dtype)], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else -(-steps // self.k), input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


@keras.saving.register_keras_serializable(package="seqcast")
class StopGradient(keras.layers.Layer):
    """The identity whose gradient is zero: the quantile head learns from the trunk's
    features without changing them (shape unchanged)."""

    def call(self, values: Any) -> Any:
        return ops.stop_gradient(values)


@keras.saving.register_keras_serializable(package="seqcast")
class MonotoneQuantiles(keras.layers.Layer):
    """Quantiles that cannot cross, from raw head outputs and the point forecast.

    Inputs: raw (batch, horizon * n_targets * n_quantiles) and the point forecast
    (batch, horizon, n_targets). The quantile nearest 0.5 is the point forecast plus a
    learnt shift; each lower quantile lies a softplus (> 0) below the next one up, each
    upper one a softplus above the next one down. Output: (batch, horizon, n_targets,
    n_quantiles), sorted along the last axis, in the point forecast's (scaled) units.
    """

    def __init__(self, quantiles: list[float], horizon: int, n_targets: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quantiles = [float(q) for q in quantiles]
        self.horizon, self.n_targets = horizon, n_targets
        self.anchor = min(range(len(self.quantiles)), key=lambda i: abs(self.quantiles[i] - 0.5))

    def call(self, inputs: list[Any]) -> Any:
        raw, point = inputs
        raw = ops.reshape(raw, (-1, self.horizon, self.n_targets, len(self.quantiles)))
        a = self.anchor
        centre = ops.stop_gradient(point)[..., None] + raw[..., a : a + 1]  # (b, h, t, 1)
        below = ops.softplus(raw[..., :a])  # gaps between neighbours, lowest first
        above = ops.softplus(raw[..., a + 1 :])
        lower = centre - ops.flip(ops.cumsum(ops.flip(below, axis=-1), axis=-1), axis=-1)
        upper = centre + ops.cumsum(above, axis=-1)
        return ops.concatenate([lower, centre, upper], axis=-1)

    def compute_output_shape(self, input_shapes: Any) -> tuple[int | None, ...]:
        return (input_shapes[0][0], self.horizon, self.n_targets, len(self.quantiles))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "quantiles": self.quantiles,
            "horizon": self.horizon,
            "n_targets": self.n_targets,
        }


@keras.saving.register_keras_serializable(package="seqcast")
class PinballLoss(keras.losses.Loss):
    """Mean pinball (quantile) loss of (batch, horizon, n_targets, n_quantiles) predictions
    against (batch, horizon, n_targets) actuals: minimised by the true quantiles."""

    def __init__(self, quantiles: list[float], name: str = "pinball", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        levels = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = ops.cast(y_true, y_pred.dtype)[..., None] - y_pred
        return ops.mean(ops.maximum(levels * error, (levels - 1.0) * error), axis=(-1, -2, -3))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "quantiles": self.quantiles}


@keras.saving.register_keras_serializable(package="seqcast")
class QuantileForecaster(keras.Model):
    """A functional forecast model with ``forecast`` and ``quantiles`` outputs that trains on
    the plain targets (batch, horizon, n_targets): each is given to both outputs' losses.

    So every input pipeline (arrays, streamed or distributed datasets) feeds it unchanged.
    Revived as a functional model of this class on loading (Keras' functional subclass).
    """

    @staticmethod
    def _both(y: Any) -> Any:
        return y if y is None or isinstance(y, dict) else {"forecast": y, "quantiles": y}

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        return super().compute_loss(x, self._both(y), y_pred, sample_weight, training)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().compute_metrics(x, self._both(y), y_pred, sample_weight)


def split_outputs(outputs: Any) -> tuple[Any, Any]:
    """(point forecasts or class probabilities, quantiles or None) of a model's outputs:
    a model with a quantile head returns a dict, any other a single array."""
    if isinstance(outputs, dict):
        return outputs["forecast"], outputs.get("quantiles")
    return outputs, None


def model_quantiles(model: keras.Model) -> list[float]:
    """The quantile levels a model's quantile head predicts ([] without one); an ensemble's
    are its first member's."""
    for layer in model.layers:
        if isinstance(layer, MonotoneQuantiles):
            return list(layer.quantiles)
        if isinstance(layer, keras.Model) and (nested := model_quantiles(layer)):
            return nested
    return []


def _recurrent_stack(hidden: Any, spec: ModelSpec, bidirectional: bool) -> Any:
    recurrent = _CELLS[spec.cell]
    for depth, units in enumerate(spec.units):
        last = depth == len(spec.units) - 1
        layer = recurrent(
            units,
            return_sequences=not last,
            recurrent_dropout=spec.recurrent_dropout,
            name=f"{spec.cell}_{depth}",
        )
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bi_{spec.cell}_{depth}")
        hidden = layer(hidden)
        if spec.dropout:
            hidden = keras.layers.Dropout(spec.dropout, name=f"dropout_{depth}")(hidden)
    return hidden  # (batch, units[-1]) or (batch, 2 * units[-1]) when bidirectional


def _covariate_inputs(
    layout: WindowLayout,
) -> dict[str, tuple[keras.KerasTensor, keras.KerasTensor]]:
    """Inputs for known-future and static covariates, each normalised and flattened.

    The train-set mean and std come with the layout and live in the model, so a model
    scores raw covariates however the windows it is given were scaled.
    """
    out = {}
    if layout.n_future:
        future = keras.Input(shape=(layout.horizon, layout.n_future), name="future")
        scaled = keras.layers.Normalization(
            mean=layout.future_mean,
            variance=[s * s for s in layout.future_std],
            name="future_scaling",
        )(future)  # (batch, horizon, n_future)
        out["future"] = (future, keras.layers.Flatten(name="future_flat")(scaled))
    if layout.n_static:
        static = keras.Input(shape=(layout.n_static,), name="static")
        scaled = keras.layers.Normalization(
            mean=layout.static_mean,
            variance=[s * s for s in layout.static_std],
            name="static_scaling",
        )(static)  # (batch, n_static)
        out["static"] = (static, scaled)
    return out


def build_model(
    layout: WindowLayout, spec: ModelSpec, window_relative: bool = False, season: int | None = None
) -> keras.Model:
    """A compiled model for ``layout``.

    Input: (batch, lookback, n_inputs); with covariates a dict of that as ``window``,
    ``future`` (batch, horizon, n_future) and ``static`` (batch, n_static), which join the
    last recurrent state before the head. Output: (batch, horizon, n_targets) scaled
    values for forecast, (batch, n_classes) probabilities for classify. ``season`` is used
    by ``spec.residual`` only. With ``spec.quantiles`` a forecast model outputs a dict:
    ``forecast`` as above and ``quantiles`` (batch, horizon, n_targets, n_quantiles), see
    `split_outputs`.
    """
    if spec.recurrent_dropout:
        logger.warning(
            "model.recurrent_dropout=%s makes the %s layers ineligible for the fused cuDNN "
            "kernel: GPU training will be several times slower",
            spec.recurrent_dropout,
            spec.cell.upper(),
        )
    # Whole sequences: any number of steps (padding length does not change the output).
    steps = None if layout.per == "sequence" else layout.lookback
    window = keras.Input(shape=(steps, len(layout.input_columns)), name="window")
    covariates = _covariate_inputs(layout)
    inputs: keras.KerasTensor | dict[str, keras.KerasTensor] = window
    if covariates:
        inputs = {"window": window, **{name: tensor for name, (tensor, _) in covariates.items()}}

    def with_covariates(hidden: Any) -> Any:
        """The last recurrent state joined with the covariates, if any."""
        if not covariates:
            return hidden
        return keras.layers.Concatenate(name="with_covariates")(
            [hidden, *(features for _, features in covariates.values())]
        )  # (batch, units[-1] + horizon * n_future + n_static)

    if layout.task == "classify":
        seen = window
        if layout.per == "sequence":
            if layout.pool > 1:  # long sequences: blocks of `pool` steps averaged into one
                seen = StepPool(layout.pool, name="step_pool")(seen)
            seen = StepMask(name="step_mask")(seen)
        hidden = with_covariates(_recurrent_stack(seen, spec, spec.bidirectional))
        outputs = keras.layers.Dense(len(layout.classes), activation="softmax", name="classes")(
            hidden
        )
        loss: Any = "sparse_categorical_crossentropy"
        metrics: Any = ["accuracy"]
    else:
        n_targets = len(layout.target_columns)
        seen = RelativeToLast(n_targets, name="relative")(window) if window_relative else window
        hidden = with_covariates(_recurrent_stack(seen, spec, bidirectional=False))
        head = keras.layers.Dense(
            layout.horizon * n_targets,
            name="forecast",
            kernel_initializer="zeros" if spec.residual else "glorot_uniform",
        )(hidden)
        delta = keras.layers.Reshape((layout.horizon, n_targets), name="horizon")(head)
        outputs = delta
        if spec.residual or window_relative:
            reference = NaiveForecast(
                n_targets, layout.horizon, season if spec.residual else None, name="naive"
            )(window)
            outputs = keras.layers.Add(name="forecast_out")([reference, delta])
        loss, metrics = "mse", ["mae"]
        if spec.quantiles:
            # Created after every trunk and point-head layer, with a zero kernel: the point
            # model's initial weights and random streams are those of a model without it.
            raw = keras.layers.Dense(
                layout.horizon * n_targets * len(spec.quantiles),
                name="quantile_raw",
                kernel_initializer="zeros",
            )(StopGradient(name="quantile_features")(hidden))
            quantiles = MonotoneQuantiles(
                spec.quantiles, layout.horizon, n_targets, name="quantiles"
            )([raw, outputs])  # (batch, horizon, n_targets, n_quantiles)
            outputs = {"forecast": outputs, "quantiles": quantiles}
            loss = {"forecast": "mse", "quantiles": PinballLoss(spec.quantiles)}
            metrics = {"forecast": ["mae"]}
    kind = QuantileForecaster if isinstance(outputs, dict) else keras.Model
    model = kind(inputs, outputs, name=f"seqcast_{spec.cell}_{layout.task}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate),
        loss=loss,
        metrics=metrics,
    )
    return model
