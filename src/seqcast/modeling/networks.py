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
    by ``spec.residual`` only.
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
        seen = StepMask(name="step_mask")(window) if layout.per == "sequence" else window
        hidden = with_covariates(_recurrent_stack(seen, spec, spec.bidirectional))
        outputs = keras.layers.Dense(len(layout.classes), activation="softmax", name="classes")(
            hidden
        )
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
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
    model = keras.Model(inputs, outputs, name=f"seqcast_{spec.cell}_{layout.task}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate),
        loss=loss,
        metrics=metrics,
    )
    return model
