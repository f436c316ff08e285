"""Training sized to the data: batch size, epochs and patience from the number of windows.

A fixed ``batch_size: 256`` starves a small series: 300 training windows make one
gradient step per epoch, twenty in a whole run. The rule here keeps at least
`MIN_STEPS_PER_EPOCH` steps in an epoch (batches down to `MIN_BATCH`), never exceeds
`MAX_BATCH` windows per device (today's default, right for large sets), and gives small
sets more epochs so a run makes about `TARGET_STEPS` gradient steps in all; patience
grows with the epochs. A value set in the config always wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from seqcast.config import ModelSpec

MIN_STEPS_PER_EPOCH = 32
"""Gradient steps an epoch should have at least, where the batch can shrink enough."""
MIN_BATCH = 8
"""Smallest per-device batch the rule picks (smaller ones mostly add per-step overhead)."""
MAX_BATCH = 256
"""Largest per-device batch the rule picks."""
TARGET_STEPS = 2_000
"""Gradient steps a whole run should make at most epochs (early stopping may end it sooner)."""
MIN_EPOCHS, MAX_EPOCHS = 20, 100
"""Bounds of the sized epochs: large sets keep today's 20, tiny ones stop at 100."""
FEW_STEPS = 10
"""An epoch with fewer gradient steps than this is logged as a warning."""


@dataclass(frozen=True)
class TrainingPlan:
    """The batch size, epochs and patience one fit uses, and why."""

    batch_size: int
    """Windows per batch on each device."""
    epochs: int
    patience: int
    steps_per_epoch: int
    """Gradient steps per epoch: train windows / (batch_size x devices), rounded up."""
    reason: str
    warning: str | None
    """Set when an epoch has fewer than `FEW_STEPS` steps."""

    def apply(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with this plan's values in place of the ones left to sizing."""
        return spec.model_copy(
            update={"batch_size": self.batch_size, "epochs": self.epochs, "patience": self.patience}
        )

    def as_dict(self) -> dict[str, int | str | None]:
        """JSON-ready summary for the log and the version manifest."""
        return {
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "patience": self.patience,
            "steps_per_epoch": self.steps_per_epoch,
            "reason": self.reason,
            "warning": self.warning,
        }


def _power_of_two_floor(value: float) -> int:
    return 1 << max(0, math.floor(math.log2(value))) if value >= 1 else 1


def size_training(spec: ModelSpec, n_train_windows: int, n_devices: int = 1) -> TrainingPlan:
    """The plan for ``n_train_windows`` training windows on ``n_devices`` replicas.

    Args:
        spec: the model settings; its ``batch_size``, ``epochs`` and ``patience`` win
            where set (not None).
        n_train_windows: windows in the training split.
        n_devices: replicas a step is spread over (``batch_size`` is per device).

    Raises:
        ValueError: ``n_train_windows`` or ``n_devices`` is not positive.
    """
    if n_train_windows <= 0:
        raise ValueError(
            f"`n_train_windows` must be positive. Received: n_train_windows={n_train_windows}"
        )
    if n_devices <= 0:
        raise ValueError(f"`n_devices` must be positive. Received: n_devices={n_devices}")
    reasons = []
    if spec.batch_size is not None:
        batch = spec.batch_size
        reasons.append(f"batch_size {batch} from the config")
    else:
        wanted = n_train_windows / (MIN_STEPS_PER_EPOCH * n_devices)
        batch = min(MAX_BATCH, max(MIN_BATCH, _power_of_two_floor(wanted)))
        reasons.append(
            f"batch_size {batch}: the largest power of two in [{MIN_BATCH}, {MAX_BATCH}] "
            f"giving at least {MIN_STEPS_PER_EPOCH} steps per epoch where possible"
        )
    steps = -(-n_train_windows // (batch * n_devices))
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
        patience = min(10, max(3, epochs // 8))
        reasons.append(f"patience {patience}: an eighth of the epochs, within [3, 10]")
    warning = None
    if steps < FEW_STEPS:
        warning = (
            f"an epoch has only {steps} gradient step(s) ({n_train_windows} training windows, "
            f"batch_size {batch} x {n_devices} device(s)): the model may barely train. Lower "
            "model.batch_size or leave it unset to size it to the data."
        )
    reason = f"{n_train_windows} training windows, {steps} steps per epoch; " + "; ".join(reasons)
    return TrainingPlan(batch, epochs, patience, steps, reason, warning)
