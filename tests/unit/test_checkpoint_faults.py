"""Issue 13 #5: training checkpoints under a full disk and when damaged.

The disk-full case trains in a subprocess whose checkpoint directory is a small tmpfs (as
root, in a private mount namespace: `unshare -m`) that another writer fills after the first
epoch's checkpoint, then frees, and trains again as the task's retry would.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from seqcast.modeling import checkpoints
from seqcast.modeling.training import train
from tests.unit.test_storage_faults import can_mount
from tests.unit.test_training import LAYOUT, SPEC, sine_windows

REPO = Path(__file__).resolve().parents[2]

DISK_FULL = """
import json, os, sys
import keras
from seqcast.modeling import checkpoints
from seqcast.modeling.training import train
from tests.unit.test_training import LAYOUT, SPEC, sine_windows

checkpoints.SAVE_EVERY_S = 0.0  # a checkpoint after every epoch: each write meets the fault
backup = sys.argv[1]
filler = os.path.join(os.path.dirname(backup), "filler")


def fill_the_disk():
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(handle, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(handle)


class FillAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:  # after the first checkpoint another writer takes every byte left
            fill_the_disk()


def attempt(**options):
    try:
        result = train(data, val, LAYOUT, spec, backup_dir=backup, **options)
    except Exception as exc:
        outcome = {"type": type(exc).__name__, "message": str(exc)}
    else:
        outcome = {"first_epoch": result.first_epoch, "epochs_run": result.epochs_run}
    outcome["left"] = sorted(os.listdir(backup)) if os.path.isdir(backup) else []
    return outcome


spec = SPEC.model_copy(update={"epochs": 2})
data, val = sine_windows(64), sine_windows(32, 1)
out = {}
fill_the_disk()  # full before the first checkpoint
out["full"] = attempt()
out["retry_still_full"] = attempt()
def free():
    if os.path.exists(filler):
        os.remove(filler)


free()
out["full_after_epoch_1"] = attempt(callbacks=[FillAfterFirstEpoch()])
free()  # space freed; the retry
out["retry"] = attempt()
print(json.dumps(out))
"""


@pytest.mark.skipif(not can_mount(), reason="needs root and unshare to mount a small tmpfs")
def test_a_full_disk_names_the_checkpoint_and_the_retry_resumes(tmp_path: Path) -> None:
    # Before: Keras wrote latest.weights.h5 in place; a full disk left it 0 bytes long, the
    # error did not say "disk full", and every retry failed on "file signature not found"
    # (naming no file); the process then crashed at exit inside h5py.
    mount = tmp_path / "small"
    mount.mkdir()
    backup = mount / "backup"
    script = tmp_path / "train.py"
    script.write_text(DISK_FULL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    shell = f'mount -t tmpfs -o size=256k tmpfs "{mount}" && exec "$@"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", shell, "sh", sys.executable, str(script), str(backup)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for case, epoch in [("full", 1), ("retry_still_full", 1), ("full_after_epoch_1", 2)]:
        assert out[case]["type"] == "StorageError", (case, out[case])
        message = out[case]["message"]
        assert f"cannot write {backup}/epoch-{epoch:05d}.npz" in message, message
        assert "disk full" in message, message
    assert out["full"]["left"] == out["retry_still_full"]["left"] == []  # no empty file
    assert out["full_after_epoch_1"]["left"] == ["epoch-00001.npz"]  # the previous, whole
    assert out["retry"] == {"first_epoch": 1, "epochs_run": 2, "left": []}
    assert done.returncode == 0, done.stderr[-3000:]


class StopAt(keras.callbacks.Callback):
    """Interrupts training as a kill would, before epoch ``epoch`` (0-based)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_damaged_checkpoint_falls_back_to_the_previous_or_starts_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "SAVE_EVERY_S", 0.0)  # a checkpoint after every epoch
    backup = tmp_path / "backup"
    data, val = sine_windows(64), sine_windows(32, 1)
    spec = SPEC.model_copy(update={"epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(data, val, LAYOUT, spec, backup_dir=str(backup), callbacks=[StopAt(2)])
    newest = backup / "epoch-00002.npz"
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-00001.npz", newest.name]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as a crash mid-copy leaves it

    with caplog.at_level(logging.WARNING, logger="seqcast.modeling.checkpoints"):
        resumed = train(data, val, LAYOUT, spec, backup_dir=str(backup))
    assert (resumed.first_epoch, resumed.epochs_run) == (1, 3)
    assert f"checkpoint {newest} cannot be used" in caplog.text
    assert not backup.exists()

    caplog.clear()
    backup.mkdir()
    (backup / "epoch-00001.npz").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="seqcast.modeling.checkpoints"):
        fresh = train(
            data, val, LAYOUT, spec.model_copy(update={"epochs": 1}), backup_dir=str(backup)
        )
    assert fresh.first_epoch == 0
    assert f"no usable checkpoint in {backup}" in caplog.text and "starts over" in caplog.text


class Clock:
    """Seconds that advance by ``step`` each time they are read (once per epoch end)."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class SavedEpochs(keras.callbacks.Callback):
    """The checkpoint files in ``directory`` after each epoch."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory, self.seen = directory, []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seen.append(sorted(p.name for p in self.directory.glob("epoch-*.npz")))


def test_short_epochs_are_saved_after_the_first_and_then_every_few_seconds(
    tmp_path: Path,
) -> None:
    """Epochs of 4 s with saves at most every 10 s: epochs 1, 4 and 7 are saved (a kill
    loses at most 10 s of training), not each of the 7."""
    backup = tmp_path / "backup"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    saver = checkpoints.EpochCheckpoints(str(backup), every_seconds=10.0, clock=Clock(4.0))
    seen = SavedEpochs(backup)
    x = keras.ops.convert_to_numpy(keras.random.normal((8, 2), seed=0))
    model.fit(x, x[:, :1], epochs=7, verbose=0, callbacks=[saver, seen])
    newest = [files[-1] if files else None for files in seen.seen]
    assert newest == [
        "epoch-00001.npz",
        "epoch-00001.npz",
        "epoch-00001.npz",
        "epoch-00004.npz",
        "epoch-00004.npz",
        "epoch-00004.npz",
        "epoch-00007.npz",
    ]
    assert not backup.exists()  # removed at the end, as before
