"""Stop a fit when a deadline passes, keeping only the epochs it finished.

The model search's minutes (``model.search.minutes``) used to be checked only between
trials, so one long trial (a masked GRU over 1,344-step sequences on two cores) could
outlast the whole budget by hours. `StopAtDeadline` checks the deadline after every
training batch and every epoch:

- at an epoch's end it stops the fit as early stopping does: that epoch is finished and
  counts like the others;
- at a batch's end, mid-epoch, it raises `DeadlineCut` out of ``fit``: the cut epoch is
  never validated, reported, checkpointed or offered to early stopping, so the result is
  the best *finished* epoch (`seqcast.modeling.training.train` catches it and restores that
  epoch's weights). Letting Keras end the epoch instead (``stop_training`` at a batch end)
  would validate the half-trained weights and rank them as an epoch.

The deadline is a wall-clock time (``time.time()`` seconds): trials may train in other
processes (Dask workers) than the search that set it, and a monotonic clock is per process.
Tests pass their own ``clock``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import keras

from seqcast.errors import SeqcastError

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds on the deadline's scale (``time.time`` unless a test passes its own)."""


class DeadlineCut(Exception):  # noqa: N818 - a signal out of fit(), not an error to report
    """Raised out of ``fit`` when the deadline passes mid-epoch (caught by the trainer)."""

    def __init__(self, epoch: int, batches: int) -> None:
        super().__init__(f"deadline passed in epoch {epoch + 1} after {batches} batch(es)")
        self.epoch, self.batches = epoch, batches


class DeadlineBeforeFirstEpochError(SeqcastError):
    """The deadline passed before the fit finished one epoch: there is no model to keep."""


class StopAtDeadline(keras.callbacks.Callback):
    """Stop training once ``clock()`` reaches ``deadline``.

    Args:
        deadline: when to stop, on ``clock``'s scale.
        clock: the current time (default ``time.time``).

    Attributes:
        stopped: None while the deadline has not passed; ``"epoch_end"`` when it stopped the
            fit after a finished epoch; ``"mid_epoch"`` when it cut an epoch short.
    """

    def __init__(self, deadline: float, clock: Clock = time.time) -> None:
        super().__init__()
        self.deadline, self.clock = deadline, clock
        self.stopped: str | None = None
        self._epoch = 0

    def passed(self) -> bool:
        return self.clock() >= self.deadline

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopped is None and self.passed():
            self.stopped = "mid_epoch"
            raise DeadlineCut(self._epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stopped is None and self.passed():
            self.stopped = "epoch_end"
            self.model.stop_training = True
            logger.info("deadline passed: training stops after epoch %d", epoch + 1)
