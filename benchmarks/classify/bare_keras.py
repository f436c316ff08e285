"""The bare Keras peer: what a classification tutorial script does, on the official split.

GRU or LSTM 64 -> softmax, inputs z-scored per dimension on the training values, batch 16, up
to 100 epochs with early stopping (patience 10, best weights restored) on a 10% validation
carve stratified by class. Unequal lengths (PLAID) are right-padded with zeros after the
z-score and masked with ``keras.layers.Masking``, as the Keras guides do. No tuning; one seed.
"""

from __future__ import annotations

import keras
import numpy as np

from benchmarks.classify.datasets import Sequences

BATCH = 16
EPOCHS = 100
PATIENCE = 10
VAL_SHARE = 0.1
PAD = 0.0


def stratified_carve(labels: list[str], share: float, seed: int) -> np.ndarray:
    """Indices of a seeded validation carve: ``share`` of each class (at least one each)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    picked = []
    for label in sorted(set(labels)):
        members = np.flatnonzero(y == label)
        take = max(1, round(share * len(members))) if len(members) > 1 else 0
        picked.extend(rng.permutation(members)[:take].tolist())
    return np.array(sorted(picked), dtype=int)


def padded(part: Sequences, mean: np.ndarray, std: np.ndarray, length: int) -> np.ndarray:
    """(sequences, length, dims) z-scored values, right-padded with ``PAD`` (longer: cut)."""
    out = np.full((len(part.values), length, part.dims), PAD, dtype=np.float32)
    for s, v in enumerate(part.values):
        steps = min(len(v), length)
        out[s, :steps] = (v[:steps] - mean) / std
    return out


def bare_classify(train: Sequences, test: Sequences, cell: str, seed: int = 0) -> dict[str, object]:
    """Fit the bare script's model on ``train`` and predict ``test``.

    Returns:
        ``predicted`` (one label per test sequence), ``epochs`` run and ``masked`` (whether
        the lengths were unequal, so padding and Masking were used).
    """
    keras.utils.set_random_seed(seed)
    classes = sorted(set(train.labels))
    y = np.array([classes.index(label) for label in train.labels])
    stacked = np.concatenate(train.values)  # (all training steps, dims)
    mean, std = stacked.mean(0), stacked.std(0)
    std = np.where(std > 0, std, 1.0)
    lengths = np.concatenate([train.lengths, test.lengths])
    masked = bool(lengths.min() != lengths.max())
    length = int(lengths.max())
    x, x_test = padded(train, mean, std, length), padded(test, mean, std, length)
    val = stratified_carve(train.labels, VAL_SHARE, seed)
    fit = np.setdiff1d(np.arange(len(y)), val)
    layer = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    model = keras.Sequential(
        [
            keras.Input(shape=(length, train.dims)),  # (batch, steps, dims)
            *([keras.layers.Masking(mask_value=PAD)] if masked else []),
            layer(64),
            keras.layers.Dense(len(classes), activation="softmax"),  # (batch, classes)
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(patience=PATIENCE, restore_best_weights=True)
    history = model.fit(
        x[fit],
        y[fit],
        validation_data=(x[val], y[val]),
        batch_size=BATCH,
        epochs=EPOCHS,
        callbacks=[stop],
        verbose=0,
    )
    probabilities = np.asarray(model.predict(x_test, batch_size=256, verbose=0))
    predicted = [classes[i] for i in probabilities.argmax(axis=1)]
    return {"predicted": predicted, "epochs": len(history.history["loss"]), "masked": masked}
