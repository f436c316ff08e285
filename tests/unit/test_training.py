"""Training is reproducible, resumable after a hard kill, fails clearly on divergence, and
the residual model starts from its baseline."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from seqcast.config import ModelSpec
from seqcast.modeling import training
from seqcast.modeling.networks import build_model
from seqcast.modeling.training import TrainingDivergedError, train
from seqcast.windows.windowing import WindowArrays
from tests.conftest import forecast_layout

LAYOUT = forecast_layout(lookback=12, horizon=3, inputs=("y", "x"))


def sine_windows(n: int, seed: int = 0) -> WindowArrays:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] + np.arange(LAYOUT.span)[None, :]
    y = np.sin(t / 3.0) + rng.normal(0, 0.05, t.shape)
    x = np.stack([y[:, :12], np.cos(t[:, :12] / 3.0)], axis=-1).astype(np.float32)
    return WindowArrays(
        x=x,
        y=y[:, 12:, None].astype(np.float32),
        series=np.full(n, "a", dtype=object),
        origin=np.zeros(n),
    )


SPEC = ModelSpec(units=[8], epochs=3, batch_size=32, seed=7, patience=5)


_SEEDED_RUNS = """
import json
import numpy as np
from seqcast.modeling.training import train
from tests.unit.test_training import LAYOUT, SPEC, sine_windows

data, val = sine_windows(256), sine_windows(64, seed=1)
runs = [train(data, val, LAYOUT, SPEC.model_copy(update={"seed": s})) for s in (7, 7, 8)]
print(json.dumps({
    "histories": [r.history for r in runs],
    "outputs": [
        {k: v.tolist() for k, v in r.model.predict(val.x, verbose=0).items()} for r in runs
    ],
}))
"""


def test_same_seed_same_result() -> None:
    """Two trainings with one seed match exactly; another seed differs. Run in a fresh
    interpreter, as nightly runs are: Keras and TensorFlow seeds are process-global, so
    threads left by earlier tests in this process could otherwise draw from them."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)])}
    out = subprocess.run(
        [sys.executable, "-c", _SEEDED_RUNS], capture_output=True, text=True, cwd=repo, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    first, second, third = runs["histories"]
    assert first == second
    for output in ("forecast", "quantiles"):  # the quantile head is as reproducible
        np.testing.assert_array_equal(runs["outputs"][0][output], runs["outputs"][1][output])
    assert third != first


def test_validation_at_once_logs_what_keras_validation_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The small-split shortcut (`ValidateAtOnce`) changes the cost, not the numbers: the
    same fit validated by Keras's loop (two batches of 32) logs the same values, quantile
    head included, and keeps the same epoch. (With a smaller last batch Keras's per-output
    losses differ: it averages them per batch, unweighted; here they are window means.)"""
    data, val = sine_windows(128), sine_windows(64, seed=1)
    at_once = train(data, val, LAYOUT, SPEC)
    monkeypatch.setattr(training, "VALIDATE_AT_ONCE", 0)
    keras_loop = train(data, val, LAYOUT, SPEC)
    assert set(at_once.history) == set(keras_loop.history)
    assert {"val_loss", "val_mae", "val_quantile_loss"} <= set(at_once.history)
    for name, values in keras_loop.history.items():
        np.testing.assert_allclose(at_once.history[name], values, rtol=1e-5, err_msg=name)
    assert at_once.best_val_loss == pytest.approx(keras_loop.best_val_loss, rel=1e-5)


def test_only_a_small_validation_split_is_held_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 windows of 12 steps x 2 inputs: held while they fit the byte bound, else scored by
    Keras's loop in batches (long, wide windows must not become one huge batch)."""
    val = sine_windows(64, seed=1)
    assert training._held_validation(val, LAYOUT, None) is not None
    per_window = 4 * LAYOUT.lookback * len(LAYOUT.input_columns)
    monkeypatch.setattr(training, "VALIDATE_AT_ONCE_BYTES", 64 * per_window - 1)
    assert training._held_validation(val, LAYOUT, None) is None
    monkeypatch.setattr(training, "VALIDATE_AT_ONCE_BYTES", 64 * per_window)
    assert training._held_validation(val, LAYOUT, None) is not None
    monkeypatch.setattr(training, "VALIDATE_AT_ONCE", 63)
    assert training._held_validation(val, LAYOUT, None) is None


def test_divergence_fails_with_a_clear_message() -> None:
    data = sine_windows(64)
    data.y[0, 0, 0] = np.nan
    with pytest.raises(TrainingDivergedError, match="loss became nan in epoch 1.*learning_rate"):
        train(data, sine_windows(32), LAYOUT, SPEC)


def test_residual_model_starts_at_the_seasonal_naive_forecast() -> None:
    model = build_model(LAYOUT, ModelSpec(units=[4], residual=True), season=4)
    window = sine_windows(5).x  # (batch, lookback, features)
    expected = window[:, [8, 9, 10], :1]  # one season (4 steps) before steps 12, 13, 14
    outputs = model.predict(window, verbose=0)
    np.testing.assert_allclose(outputs["forecast"], expected, rtol=1e-6)
    # The quantile head starts around the same forecast, its median on it.
    np.testing.assert_allclose(outputs["quantiles"][..., 1], expected, rtol=1e-6)


def test_recurrent_dropout_warns_about_cudnn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="seqcast.modeling.networks"):
        build_model(LAYOUT, ModelSpec(units=[4], recurrent_dropout=0.2))
    assert "cuDNN" in caplog.text


KILL_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    sys.path[:0] = {paths!r}
    from tests.unit.test_training import LAYOUT, SPEC, sine_windows
    from seqcast.modeling import checkpoints
    from seqcast.modeling.training import train

    checkpoints.SAVE_EVERY_S = 0.0  # every epoch saved: the kill after epoch 2 loses none
    backup, kill_after = sys.argv[1], int(sys.argv[2])
    spec = SPEC.model_copy(update={{"epochs": 6}})

    def hook(done, planned, metrics):
        if done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, like an OOM kill

    result = train(sine_windows(256), sine_windows(64, 1), LAYOUT, spec, backup_dir=backup,
                   on_epoch_end=hook)
    print(json.dumps({{"first_epoch": result.first_epoch, "epochs_run": result.epochs_run}}))
""")


def test_killed_training_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT.format(paths=[str(repo)]))
    backup = str(tmp_path / "backup")
    killed = subprocess.run(
        [sys.executable, str(script), backup, "2"], capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    rerun = subprocess.run(
        [sys.executable, str(script), backup, "0"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    outcome = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert outcome == {"first_epoch": 2, "epochs_run": 6}
    assert not Path(backup).exists()  # a finished run removes its checkpoint
