"""What the operator reads (issue 14 #3, #6, #7, #11): run names, one error line, no
start-up or retracing noise, strict JSON."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import numpy as np
import pytest

from flows.cli.support import _OneErrorLine, echo_json
from flows.names import build_run_name
from seqcast.native_logs import is_noise
from tasks.window import window_counts

DAY = date(2026, 1, 3)


@pytest.mark.parametrize(
    ("current", "tags", "auto_scheduled", "expected"),
    [
        ("amazing-tiger", [], True, "train-load-2026-01-03"),  # the schedule's run
        ("amazing-tiger", [], False, "train-load-2026-01-03-manual"),  # CLI, UI "Run"
        ("amazing-tiger", ["backfill"], False, "train-load-2026-01-03-backfill"),
        (None, [], False, "train-load-2026-01-03-manual"),
        # Given at creation (a backfill's, a custom run's from the UI): kept.
        ("nightly-retrain-2026-01-03-backfill", ["backfill"], False, None),
        ("rerun after the outage", [], False, None),
        ("train-load-2026-01-03-manual", [], False, None),  # a retry keeps its name
    ],
)
def test_run_names_carry_the_logical_date_and_keep_a_given_name(
    current: str | None, tags: list[str], auto_scheduled: bool, expected: str | None
) -> None:
    name = build_run_name("train", "load", DAY, current, tags, auto_scheduled)
    assert name == (expected or current)


def test_window_counts_are_words() -> None:
    assert window_counts({"train": 3480, "val": 448, "test": 984}) == (
        "3,480 train, 448 val and 984 test windows"
    )
    assert window_counts({"train": 1}) == "1 train windows"


def test_tensorflow_start_up_lines_are_noise_and_warnings_are_not() -> None:
    preamble = (
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    )
    onednn = (
        b"I0000 00:00:1796175001.069565   30073 port.cc:153] oneDNN custom operations are on. "
        b"You may see slightly different numerical results\n"
    )
    assert is_noise(preamble, 2) and is_noise(onednn, 2)
    assert not is_noise(onednn, 0)  # TF_CPP_MIN_LOG_LEVEL=0: the user asked for them
    assert not is_noise(b"W0000 00:00:1796175001.069565   30073 x.cc:1] a warning\n", 2)
    assert not is_noise(b"Traceback (most recent call last):\n", 2)


def _record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_the_console_drops_the_engines_failure_reports_only() -> None:
    keep = _OneErrorLine().filter
    cause = "SourceError: source.path 'x' matches no files"
    assert not keep(_record("prefect.task_runs", f"Finished in state Failed('{cause}')"))
    assert not keep(
        _record("prefect.flow_runs", f"Encountered exception during execution: {cause}")
    )
    assert not keep(_record("prefect.flow_runs", "Finished in state Failed('Flow run ...')", 20))
    assert not keep(_record("prefect.task_runs", f"Task run failed with exception: {cause}"))
    # A retry is news (the run goes on); other lines and other loggers pass.
    assert keep(
        _record("prefect.task_runs", f"Task run failed with {cause} - Retry 1/2 will start")
    )
    assert keep(_record("prefect.task_runs", "Finished in state Completed()", 20))
    assert keep(_record("seqcast.modeling.training", "Finished in state Failed, said the library"))


def test_json_output_is_strict(capsys: pytest.CaptureFixture[str]) -> None:
    echo_json({"metrics": {"model": {"mase": float("nan"), "mae": 1.5}}, "rows": [float("inf")]})
    assert json.loads(capsys.readouterr().out) == {
        "metrics": {"model": {"mase": None, "mae": 1.5}},
        "rows": [None],
    }


def test_a_loaded_network_predicts_without_retracing(caplog: pytest.LogCaptureFixture) -> None:
    # TensorFlow warned on every prediction shard: each shard loaded the model again and
    # `keras.Model.predict` traced anew per model and batch shape.
    import keras

    from seqcast.modeling.forward import PREDICT_BATCH
    from seqcast.serving.prediction import network_outputs
    from seqcast.serving.registry import LoadedModel

    def loaded(seed: int) -> LoadedModel:
        keras.utils.set_random_seed(seed)
        window = keras.Input(shape=(4, 1), name="window")
        model = keras.Model(window, keras.layers.Dense(2)(keras.layers.Flatten()(window)))
        none: Any = None
        return LoadedModel(version=f"v{seed}", model=model, scaler=none, layout=none, metrics={})

    models = [loaded(seed) for seed in range(6)]  # six loads: shards of six runs, one process
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for rows in (1, 3, 7, PREDICT_BATCH + 5):  # every batch shape, and two batches
            x = np.arange(rows * 4, dtype="float32").reshape(rows, 4, 1)
            for champion in models:
                out = network_outputs(champion, x)
                assert out.shape == (rows, 2)
                assert champion.model is not None
                np.testing.assert_allclose(out, champion.model(x).numpy(), rtol=1e-6, atol=1e-5)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
