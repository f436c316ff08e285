"""Issue 16, in the UI: the prediction artifact plots the series the champion fitted worst
(not the first ones), reads only their rows, draws the quantile band when the file has
quantile columns, and lists the series set aside with their reasons. No Prefect, no Keras.

The files: series s0..s5, hourly; history value of s{i} at hour t is 100*i + t, its
forecasts continue that line; quantile columns, where written, are the forecast -/+ 10.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from seqcast.io import storage
from seqcast.modeling import plots
from seqcast.serving import prediction_report
from seqcast.serving.prediction_report import Columns
from tests.conftest import forecast_layout

LAYOUT = forecast_layout(lookback=8, horizon=3)  # series column "id", time "ts", target "y"
COLUMNS = Columns("id", "ts", "y")
SERIES = [f"s{i}" for i in range(6)]
HOURS = 20  # history length; the forecasts are hours 20..22
START = pd.Timestamp("2024-01-01", tz="UTC")


def history_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.repeat(SERIES, HOURS),
            "ts": START + pd.to_timedelta(np.tile(np.arange(HOURS), len(SERIES)), unit="h"),
            "y": [100.0 * i + t for i in range(len(SERIES)) for t in range(HOURS)],
        }
    )


def forecast_frame(series: list[str], quantiles: tuple[float, ...] = ()) -> pd.DataFrame:
    steps = np.arange(1, LAYOUT.horizon + 1)
    frame = pd.DataFrame(
        {
            "id": np.repeat(series, len(steps)),
            "origin": START + pd.Timedelta(hours=HOURS - 1),
            "ts": START + pd.to_timedelta(np.tile(HOURS - 1 + steps, len(series)), unit="h"),
            "step": np.tile(steps, len(series)).astype(np.int32),
            "y": [100.0 * int(s[1:]) + HOURS - 1 + k for s in series for k in steps],
        }
    )
    for q in quantiles:
        frame[f"y_q{q}"] = frame["y"] + (q - 0.5) * 25  # 0.1 -> -10, 0.9 -> +10
    return frame


def write(frame: pd.DataFrame, path: Path, row_group_size: int) -> str:
    storage.write_parquet(
        pa.Table.from_pandas(frame, preserve_index=False), str(path), row_group_size
    )
    return str(path)


def test_the_worst_fitting_series_are_picked_worst_first() -> None:
    mae = {"s0": 1.0, "s1": 5.0, "s2": 3.0, "s3": float("nan"), "s4": 4.0, "s5": 3.0}
    assert prediction_report.worst_fitting(mae, skip=(), n=3) == ["s1", "s4", "s2"]
    # a series set aside tonight has no forecast: the next worst takes its place
    assert prediction_report.worst_fitting(mae, skip={"s4"}, n=3) == ["s1", "s2", "s5"]
    assert prediction_report.worst_fitting({}, skip=(), n=4) == []


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    """(prediction file, validated table), one series per row group, so a read of a few
    series can skip the others' groups."""
    predictions = write(forecast_frame(SERIES), tmp_path / "p.parquet", LAYOUT.horizon)
    validated = write(history_frame(), tmp_path / "v.parquet", HOURS)
    return predictions, validated


def plotted(
    monkeypatch: pytest.MonkeyPatch, mae: dict[str, float], files: tuple[str, str], skip=()
) -> tuple[list[plots.PredictionPanel], str, list[Any]]:
    """Run `forecast_plot` with the champion's per-series MAE ``mae``; return the panels it
    drew, its sentence and the filters of every Parquet read."""
    drawn: list[plots.PredictionPanel] = []
    reads: list[Any] = []
    read = storage.read_parquet

    def recording_read(uri: str, columns=None, filters=None) -> pa.Table:
        reads.append(filters)
        return read(uri, columns, filters)

    monkeypatch.setattr(prediction_report, "champion_fit", lambda root, v: ("model", mae))
    monkeypatch.setattr(storage, "read_parquet", recording_read)
    monkeypatch.setattr(plots, "predictions", lambda panels, target: drawn.extend(panels) or b"png")
    image, note = prediction_report.forecast_plot("root", "v1", LAYOUT, *files, COLUMNS, skip)
    assert image == b"png"
    return drawn, note, reads


def test_the_plot_shows_the_worst_fitting_series_and_reads_only_their_rows(
    monkeypatch: pytest.MonkeyPatch, files: tuple[str, str]
) -> None:
    mae = {"s0": 0.5, "s1": 9.0, "s2": 1.0, "s3": 7.0, "s4": 8.0, "s5": 0.1, "gone": 99.0}
    drawn, note, filters = plotted(monkeypatch, mae, files, skip={"s4"})
    # "gone" is not in tonight's file, s4 was set aside: the next worst fill the four panels
    assert [p.series for p in drawn] == ["s1", "s3", "s2", "s0"]
    assert "worst first: `s1` (9), `s3` (7), `s2` (1), `s0` (0.5)" in note
    assert all(f is not None and f[0][:2] == ("id", "in") for f in filters)  # never whole
    s1 = drawn[0]
    history = prediction_report.history_rows(LAYOUT)  # 8 (lookback) = max(6, min(8, 12))
    np.testing.assert_array_equal(s1.history, 100.0 + np.arange(HOURS - history, HOURS))
    np.testing.assert_array_equal(s1.forecast, [120.0, 121.0, 122.0])
    assert s1.time[0] - s1.history_time[-1] == np.timedelta64(1, "h")
    assert s1.band is None and "no quantile columns" in note


def test_a_file_with_quantile_columns_is_plotted_with_its_band(
    monkeypatch: pytest.MonkeyPatch, files: tuple[str, str], tmp_path: Path
) -> None:
    banded = forecast_frame(SERIES, (0.5, 0.9, 0.1))
    predictions = write(banded, tmp_path / "q.parquet", LAYOUT.horizon)
    drawn, note, _ = plotted(monkeypatch, {"s2": 3.0, "s5": 4.0}, (predictions, files[1]))
    assert [p.series for p in drawn] == ["s5", "s2"]
    assert "Shaded: between the `y_q0.1` and `y_q0.9` forecasts" in note
    low, high = drawn[0].band  # type: ignore[misc]
    np.testing.assert_array_equal(high - low, [20.0, 20.0, 20.0])


def test_without_per_series_errors_the_first_series_are_plotted_and_logged(
    monkeypatch: pytest.MonkeyPatch, files: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="seqcast.serving.prediction_report"):
        drawn, note, _ = plotted(monkeypatch, {}, files)
    assert [p.series for p in drawn] == ["s0", "s1", "s2", "s3"]
    assert "stored no per-series test error" in caplog.text and "first 4 series" in note


def band_pixels(png: bytes) -> int:
    import matplotlib.image

    rgb = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    band = np.array([int(plots.BAND_COLOR[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int(np.all(np.abs(rgb - band) < 2 / 255, axis=-1).sum())


def test_the_band_spans_the_lowest_and_highest_quantile_when_the_file_has_them() -> None:
    history = history_frame()
    with_band = prediction_report.panels(
        forecast_frame(["s1", "s2"], (0.9, 0.1, 0.5)), history, COLUMNS, ["s2", "s1"]
    )
    assert [p.series for p in with_band] == ["s2", "s1"]
    low, high = with_band[0].band  # type: ignore[misc]
    np.testing.assert_allclose(low, with_band[0].forecast - 10.0)  # y_q0.1
    np.testing.assert_allclose(high, with_band[0].forecast + 10.0)  # y_q0.9
    assert with_band[0].band_label == "q0.1-q0.9"
    plain = prediction_report.panels(forecast_frame(["s1", "s2"]), history, COLUMNS, ["s2", "s1"])
    assert [p.band for p in plain] == [None, None]

    png = plots.predictions(with_band, "y")
    assert band_pixels(png) > 1000  # the shaded band is drawn...
    assert band_pixels(plots.predictions(plain, "y")) == 0  # ...and only when there is one
    assert len(png) < 60_000  # inline in the artifact as base64


def test_the_artifact_lists_the_counts_the_model_and_the_series_set_aside(tmp_path: Path) -> None:
    from seqcast.data.validation_report import save_report
    from tests.unit.test_bad_inputs import STEPS
    from tests.unit.test_prediction_scope import blank_load, prediction_check

    report = prediction_check(
        tmp_path, lambda lines: blank_load(lines, STEPS - 2), series_quarantine_limit=0.5
    )
    files = save_report(report, str(tmp_path / "root"), "run")
    set_aside, quarantine_uri = prediction_report.set_aside_of(files.report_uri)
    text = prediction_report.markdown(
        prediction_report.PredictionSummary(
            pipeline="feed",
            day="2026-12-02",
            rows=2,
            series=1,
            model_version="20261202T000000000000Z-0123abcd",
            model_kind="network",
            uri="/data/predictions/p.parquet",
            set_aside=set_aside,
            quarantine_uri=quarantine_uri,
            plot_note="The 1 series ...",
            image=b"\x89PNG",
        )
    )
    assert "- rows written: **2**" in text and "- series predicted: **1**" in text
    assert "- series set aside: **1**" in text
    assert "- model: version `20261202T000000000000Z-0123abcd`, kind **network**" in text
    assert "- prediction file: `/data/predictions/p.parquet`" in text
    assert f"Their rows are in `{files.quarantine_uri}`" in text
    assert "- `sensor-1`: not_null on 'load': 1 row(s) null value" in text
    assert "![forecasts](data:image/png;base64,iVBORw==)" in text
