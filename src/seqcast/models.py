"""The network: stacked LSTM or GRU layers and a head for forecasting or classification.

Recurrent layers keep Keras' defaults (tanh, sigmoid, no recurrent dropout, not
unrolled, GRU ``reset_after=True``) so that on a GPU TensorFlow runs them with the fused
cuDNN kernel; dropout is applied between layers, never inside the recurrence.
"""

from __future__ import annotations

import keras

from seqcast.config import ModelSpec
from seqcast.windowing import WindowLayout

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


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


def build_model(layout: WindowLayout, spec: ModelSpec) -> keras.Model:
    """A compiled model for ``layout``.

    Input: (batch, lookback, n_inputs); with covariates a dict of that as ``window``,
    ``future`` (batch, horizon, n_future) and ``static`` (batch, n_static), which join the
    last recurrent state before the head. Output: (batch, horizon, n_targets) scaled
    values for forecast, (batch, n_classes) probabilities for classify.
    """
    recurrent = _CELLS[spec.cell]
    window = keras.Input(shape=(layout.lookback, len(layout.input_columns)), name="window")
    hidden = window  # (batch, lookback, features)
    for depth, units in enumerate(spec.units):
        last = depth == len(spec.units) - 1
        hidden = recurrent(units, return_sequences=not last, name=f"{spec.cell}_{depth}")(hidden)
        if spec.dropout:
            hidden = keras.layers.Dropout(spec.dropout, name=f"dropout_{depth}")(hidden)
    # hidden: (batch, units[-1])
    inputs: keras.KerasTensor | dict[str, keras.KerasTensor] = window
    covariates = _covariate_inputs(layout)
    if covariates:
        inputs = {"window": window, **{name: tensor for name, (tensor, _) in covariates.items()}}
        hidden = keras.layers.Concatenate(name="with_covariates")(
            [hidden, *(features for _, features in covariates.values())]
        )  # (batch, units[-1] + horizon * n_future + n_static)
    if layout.task == "forecast":
        n_targets = len(layout.target_columns)
        flat = keras.layers.Dense(layout.horizon * n_targets, name="forecast")(hidden)
        outputs = keras.layers.Reshape((layout.horizon, n_targets), name="horizon")(flat)
        loss, metrics = "mse", ["mae"]
    else:
        outputs = keras.layers.Dense(len(layout.classes), activation="softmax", name="classes")(
            hidden
        )
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    model = keras.Model(inputs, outputs, name=f"seqcast_{spec.cell}_{layout.task}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate),
        loss=loss,
        metrics=metrics,
    )
    return model
