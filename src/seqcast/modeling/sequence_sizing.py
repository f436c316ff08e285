"""Training sized for whole-sequence classification (``window.per: sequence``).

An archive set has tens to a few thousand sequences, one window each: the forecasting
rule (`seqcast.modeling.sizing`, sized for thousands of windows) gave such a set 20
epochs and a patience of 3 that stopped before it learned anything. Here a small set
gets small batches (8 to 16 sequences for 50 to 250: several gradient steps per epoch),
up to `MAX_EPOCHS` epochs, and a patience of 10 to 15 epochs on validation loss, whose
best weights are restored (`seqcast.modeling.training`), as the peers' Keras recipes for
these sets do (100 epochs, batch 16). A value set in the config always wins.
"""

from __future__ import annotations

import math

from seqcast.config import ModelSpec
from seqcast.modeling.sizing import TrainingPlan, size_training

SEQUENCES_PER_STEP = 8
"""Aim for about this many gradient steps per epoch: batch = sequences / 8, rounded down to
a power of two within [`MIN_BATCH`, `MAX_BATCH`]."""
MIN_BATCH, MAX_BATCH = 8, 64
TARGET_STEPS = 3_000
"""Gradient steps a whole run should make at most (early stopping ends most runs sooner)."""
MIN_EPOCHS, MAX_EPOCHS = 30, 100
MIN_PATIENCE, MAX_PATIENCE = 10, 15


def size_sequence_training(spec: ModelSpec, n_sequences: int, n_devices: int = 1) -> TrainingPlan:
    """The plan for ``n_sequences`` training sequences on ``n_devices`` replicas.

    Raises:
        ValueError: ``n_sequences`` or ``n_devices`` is not positive.
    """
    if n_sequences <= 0:
        raise ValueError(f"`n_sequences` must be positive. Received: n_sequences={n_sequences}")
    if n_devices <= 0:
        raise ValueError(f"`n_devices` must be positive. Received: n_devices={n_devices}")
    reasons = []
    if spec.batch_size is not None:
        batch = spec.batch_size
        reasons.append(f"batch_size {batch} from the config")
    else:
        wanted = n_sequences / (SEQUENCES_PER_STEP * n_devices)
        power = 1 << max(0, math.floor(math.log2(wanted))) if wanted >= 1 else 1
        batch = min(MAX_BATCH, max(MIN_BATCH, power))
        reasons.append(
            f"batch_size {batch}: sequences / {SEQUENCES_PER_STEP} as a power of two in "
            f"[{MIN_BATCH}, {MAX_BATCH}]"
        )
    steps = -(-n_sequences // (batch * n_devices))
    if spec.epochs is not None:
        epochs = spec.epochs
        reasons.append(f"epochs {epochs} from the config")
    else:
        epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, -(-TARGET_STEPS // steps)))
        reasons.append(
            f"epochs {epochs}: about {TARGET_STEPS} steps in all, within "
            f"[{MIN_EPOCHS}, {MAX_EPOCHS}]"
        )
    if spec.patience is not None:
        patience = spec.patience
        reasons.append(f"patience {patience} from the config")
    else:
        patience = min(MAX_PATIENCE, max(MIN_PATIENCE, epochs // 7))
        reasons.append(
            f"patience {patience}: a seventh of the epochs within [{MIN_PATIENCE}, "
            f"{MAX_PATIENCE}], best weights restored"
        )
    reason = (
        f"{n_sequences} training sequences (window.per=sequence), {steps} steps per epoch; "
        + "; ".join(reasons)
    )
    return TrainingPlan(batch, epochs, patience, steps, reason, None)


def size_for(
    spec: ModelSpec, n_train_windows: int, n_devices: int = 1, per: str = "step"
) -> TrainingPlan:
    """The sizing rule for the windows' kind: whole sequences, or step windows."""
    if per == "sequence":
        return size_sequence_training(spec, n_train_windows, n_devices)
    return size_training(spec, n_train_windows, n_devices)
