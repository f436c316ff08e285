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


def build_model(layout: WindowLayout, spec: ModelSpec) -> keras.Model:
    """A compiled model for ``layout``.

    Input: (batch, lookback, n_inputs). Output: (batch, horizon, n_targets) scaled values
    for forecast, (batch, n_classes) probabilities for classify.
    """
    recurrent = _CELLS[spec.cell]
    inputs = keras.Input(shape=(layout.lookback, len(layout.input_columns)), name="window")
    hidden = inputs  # (batch, lookback, features)
    for depth, units in enumerate(spec.units):
        last = depth == len(spec.units) - 1
        hidden = recurrent(units, return_sequences=not last, name=f"{spec.cell}_{depth}")(hidden)
        if spec.dropout:
            hidden = keras.layers.Dropout(spec.dropout, name=f"dropout_{depth}")(hidden)
    # hidden: (batch, units[-1])
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
