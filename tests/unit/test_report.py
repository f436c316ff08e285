"""Issue 14 #10: the evaluation report plots the worst series it names, at a readable size;
training keeps one progress artifact per run and logs the time of every variant."""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seqcast.modeling import evaluation, plots
from seqcast.windows.scaling import Scaler, Stats
from seqcast.windows.windowing import WindowArrays
from tests.conftest import forecast_layout
from tests.unit.test_prediction_report import band_pixels


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG header."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_the_plot_shows_the_worst_series_the_report_names() -> None:
    from seqcast.modeling.scoring import forecast_examples

    # Five series, two test windows each; series s(i) at step t holds 10*i + t. The model
    # is off by 0.5, 2, 0.1, 5, 0.2 for s0..s4: s3 is worst, then s1, s0. The old plot
    # showed the first three series (s0, s1, s2) whatever the report said.
    layout = forecast_layout(lookback=3, horizon=2)
    series = np.repeat([f"s{i}" for i in range(5)], 2)
    start = np.array([10.0 * i for i in range(5)]).repeat(2) + np.tile([0.0, 1.0], 5)
    x = (start[:, None] + np.arange(3))[..., None]  # (windows, lookback, 1)
    y = (start[:, None] + 3 + np.arange(2))[..., None]  # (windows, horizon, 1)
    error = np.array([0.5, 2.0, 0.1, 5.0, 0.2]).repeat(2)[:, None, None]
    outputs = y + error
    test = WindowArrays(
        x=x.astype(np.float32), y=y.astype(np.float32), series=series, origin=np.zeros(10)
    )
    scaler = Scaler(kind="none", columns=["y"], global_stats=Stats(mean=[0.0], std=[1.0]))
    naive = {"last_value": np.repeat(x[:, -1:, :], 2, axis=1)}
    report = evaluation.evaluate_forecast(outputs, test, layout, scaler, None, baselines=naive)
    worst = report.worst_series()
    assert worst[:3] == ["s3", "s1", "s0"]

    examples = forecast_examples(
        test, outputs, layout, scaler, None, naive, worst, report.per_series_mae
    )
    assert [e.series for e in examples] == ["s3", "s1", "s0"]
    first = examples[0]
    np.testing.assert_allclose(first.history, [31.0, 32.0, 33.0])  # s3's last test window
    np.testing.assert_allclose(first.actual, [34.0, 35.0])
    np.testing.assert_allclose(first.predicted, [39.0, 40.0])
    assert first.note.startswith("worst #1, model MAE 5.000")

    png = plots.forecasts(examples, "y")
    width, height = png_size(png)
    assert width >= 850 and height >= 3 * 250  # readable in the UI without zooming
    assert len(png) < 200_000  # embedded in a markdown artifact as base64
    assert band_pixels(png) == 0  # no quantile head, no band

    # With the model's quantiles (q0.1, q0.5, q0.9 = forecast -1, +0, +3) the panels draw
    # the band between the lowest and the highest, in original units.
    band = outputs[..., None] + np.array([-1.0, 0.0, 3.0])
    banded = forecast_examples(
        test,
        outputs,
        layout,
        scaler,
        None,
        naive,
        worst,
        report.per_series_mae,
        band,
        [0.1, 0.5, 0.9],
    )
    low, high = banded[0].band  # type: ignore[misc]
    np.testing.assert_allclose(low, [38.0, 39.0])
    np.testing.assert_allclose(high, [42.0, 43.0])
    assert banded[0].band_label == "q0.1-q0.9"
    assert band_pixels(plots.forecasts(banded, "y")) > 500


class _Recorder:
    """Stands in for Prefect's progress-artifact API outside a flow run."""

    def __init__(self) -> None:
        self.created: list[float] = []
        self.updates: list[tuple[str, float]] = []

    def create(self, progress: float, description: str) -> str:
        self.created.append(progress)
        return f"artifact-{len(self.created)}"

    def update(self, artifact_id: str, progress: float) -> str:
        self.updates.append((artifact_id, progress))
        return artifact_id


def test_one_progress_artifact_per_training_run_and_the_time_of_every_variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import tasks.train as train_task
    from seqcast.records import WindowsRef
    from seqcast.windows import store as window_store
    from tests.unit.test_search import tiny_store

    config, built = tiny_store(tmp_path)  # 1 epoch per variant
    assert config.window_relative_options == [False, True]  # normalize=auto: two variants
    layout = window_store.read_layout(built.uri)
    windows = WindowsRef(
        uri=built.uri,
        fingerprint=built.key,
        rows_by_split=built.counts,
        n_inputs=len(layout.input_columns),
        n_outputs=layout.horizon,
    )
    recorder = _Recorder()
    monkeypatch.setattr(train_task, "create_progress_artifact", recorder.create)
    monkeypatch.setattr(train_task, "update_progress_artifact", recorder.update)
    monkeypatch.setattr(train_task, "get_run_logger", lambda: logging.getLogger("seqcast.t"))
    with caplog.at_level(logging.INFO, logger="seqcast.t"):
        trained: Any = train_task.train.fn(config, windows)

    assert recorder.created == [0.0]  # one artifact for both variants
    assert {artifact for artifact, _ in recorder.updates} == {"artifact-1"}
    assert recorder.updates[-1][1] == 100.0  # finished, even if early stopping cut a variant
    progress = [p for _, p in recorder.updates]
    assert progress == sorted(progress)
    (summary,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Trained")]
    assert "Trained 2 variants in" in summary
    assert "series-scaled 1 epoch(s)" in summary and "window-relative 1 epoch(s)" in summary
    total = float(summary.split(" variants in ")[1].split("s ")[0])
    assert trained.train_seconds == pytest.approx(total, abs=0.06)
