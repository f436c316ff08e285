"""Epoch training checkpoints that a full disk or a kill cannot corrupt.

A killed or retried training resumes from the last epoch whose checkpoint is whole. Why not
`keras.callbacks.BackupAndRestore` (Keras 3.15): it rewrites ``latest.weights.h5`` in place,
so a write that fails (disk full) leaves a truncated file that the next attempt loads and
fails on (``OSError: Unable to synchronously open file (file signature not found)``, no
path); its ``double_checkpoint`` copies that file first, which a full disk fails as well;
and after a failed HDF5 write the process crashes at exit inside h5py.

The first epoch is saved, then each epoch that ends `SAVE_EVERY_S` (10 s) or more after
the last save. Here a saved epoch's state (the model's and the optimizer's variables, as in
``model.save_weights``) is assembled in memory as a NumPy ``.npz`` and written with
`seqcast.io.storage.write_bytes`: a temporary file, fsynced, renamed to
``epoch-{N}.npz``. The previous checkpoint is removed only once the new one is in place,
so a failed write leaves it, and a write refused by the OS for good (disk full, read-only)
raises `StorageError` naming the file. On start the newest checkpoint that loads is used;
one that does not (truncated, tampered) is named in a warning and the one before it tried,
and with none left training starts over, saying so.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from seqcast.io import storage

logger = logging.getLogger(__name__)

KEEP = 2
"""Checkpoints kept: the newest and the one before it, to fall back on."""

_NAME = re.compile(r"^epoch-(\d{5,})\.npz$")


def checkpoint_files(directory: str) -> list[tuple[int, Path]]:
    """The checkpoints in ``directory`` as (epochs done, path), newest first."""
    found = []
    folder = Path(directory)
    if folder.is_dir():
        for path in folder.iterdir():
            if match := _NAME.match(path.name):
                found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def _variables(model: keras.Model) -> list[Any]:
    optimizer = model.optimizer
    return [*model.weights, *(optimizer.variables if optimizer is not None else [])]


def state_bytes(model: keras.Model, epochs_done: int) -> bytes:
    """The model's and optimizer's variables after ``epochs_done`` epochs, as ``.npz``."""
    variables = _variables(model)
    meta = json.dumps({"epochs_done": epochs_done, "paths": [v.path for v in variables]})
    arrays: dict[str, Any] = {"__meta__": np.frombuffer(meta.encode(), dtype=np.uint8)}
    for i, variable in enumerate(variables):
        arrays[f"v{i}"] = np.asarray(keras.ops.convert_to_numpy(variable))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def restore_state(model: keras.Model, path: Path) -> int:
    """Load a checkpoint into ``model``; all of it or (on any error) nothing.

    Returns:
        The epochs it records as done.

    Raises:
        ValueError: the file is not a whole checkpoint of this model (truncated, tampered,
            another architecture); ``model`` is unchanged.
    """
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables must exist to load
    variables = _variables(model)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            arrays = [data[f"v{i}"] for i in range(len(variables))]
    except Exception as exc:  # noqa: BLE001 - zip, npy and JSON errors of a damaged file
        raise ValueError(f"not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    # By position and shape, as Keras's own weight files: names are not stable (a second
    # optimizer in one process is "adam_1", as a task's retry would create it).
    if len(meta.get("paths", [])) != len(variables):
        raise ValueError("it holds the variables of another model or optimizer")
    for variable, array in zip(variables, arrays, strict=True):
        if tuple(array.shape) != tuple(variable.shape):
            raise ValueError(f"{variable.path} has shape {array.shape}, not {variable.shape}")
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)
    return int(meta["epochs_done"])


SAVE_EVERY_S = 10.0
"""After the first epoch, a checkpoint is written once this many seconds of training passed
since the last one: a killed fit redoes at most that much work and the epoch it was in.
Epochs longer than it (most real data) are each saved; a fit of many short epochs no longer
stops for an fsynced write after each of them (20 writes were 0.1 s of a 2.5 s fit of a
300-row series, issue 14 #5)."""


class EpochCheckpoints(keras.callbacks.Callback):
    """Save after the first epoch and then every `SAVE_EVERY_S` seconds (at epoch ends)
    into ``directory``; resume from it when training starts; remove it when training ends
    (a finished run leaves no state to resume).

    Put it first in the callback list, so an epoch counts as done (reported, used by
    early stopping) only once it is saved, when it is one that is saved.
    """

    def __init__(
        self,
        directory: str,
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.every_seconds = SAVE_EVERY_S if every_seconds is None else every_seconds
        self.clock = clock
        self._saved_at: float | None = None  # none yet in this fit: the first epoch is saved

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._saved_at = None
        found = checkpoint_files(self.directory)
        for _, path in found:
            try:
                restored = restore_state(self.model, path)
            except ValueError as exc:
                logger.warning(
                    "checkpoint %s cannot be used (%s); trying the one before it", path, exc
                )
                continue
            self.model._initial_epoch = restored  # read by fit() after on_train_begin
            logger.info("resuming after epoch %d from checkpoint %s", restored, path)
            return
        if found:
            logger.warning(
                "no usable checkpoint in %s (all %d damaged): training starts over from the "
                "first epoch",
                self.directory,
                len(found),
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = self.clock()
        if self._saved_at is not None and now - self._saved_at < self.every_seconds:
            return
        self._saved_at = now
        done = epoch + 1
        target = Path(self.directory) / f"epoch-{done:05d}.npz"
        # Raises StorageError naming the file when the disk is full; the previous
        # checkpoint is still whole then, and a later attempt resumes from it.
        storage.write_bytes(str(target), state_bytes(self.model, done), durable=True)
        for _, older in checkpoint_files(self.directory)[KEEP:]:
            older.unlink(missing_ok=True)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
