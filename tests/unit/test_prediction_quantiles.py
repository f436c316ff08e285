"""Registry round trips: a network champion and a baseline champion both predict one
quantile column per level, the network's calibration shifts applied from its version."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seqcast.config import ModelSpec
from seqcast.io import storage
from seqcast.modeling.networks import build_model
from seqcast.serving import registry
from seqcast.serving.prediction import predict_frame
from seqcast.windows.scaling import Scaler, Stats
from tests.conftest import arithmetic_frame, forecast_layout

LAYOUT = forecast_layout(lookback=4, horizon=3)
LEVELS = [0.1, 0.5, 0.9]
COLUMNS = [f"y_q{q}" for q in LEVELS]
STD = 50.0


@pytest.fixture
def windows(tmp_path: Path) -> str:
    uri = str(tmp_path / "windows")
    scaler = Scaler("global", ["y"], Stats([1000.0], [STD]))
    storage.write_json(storage.join(uri, "scaler.json"), scaler.to_json())
    storage.write_json(storage.join(uri, "layout.json"), dataclasses.asdict(LAYOUT))
    return uri


def champion_predictions(root: str, version: str) -> Any:
    registry.set_champion(root, version, {"reason": "test"})
    return predict_frame(arithmetic_frame(2, 10), registry.load_champion(root))


def test_a_network_champion_predicts_quantile_columns_calibrated_by_its_version(
    tmp_path: Path, windows: str
) -> None:
    model = build_model(LAYOUT, ModelSpec(units=[2], quantiles=LEVELS))
    model_file = tmp_path / "model.keras"
    model.save(model_file)
    root = str(tmp_path / "pipe")
    plain = registry.register_version(
        root, str(model_file), windows, {"intervals": {"quantiles": LEVELS, "offsets": {}}}, {}
    )
    shifts = np.array([-1.0, 0.0, 2.0])[:, None, None] * np.ones((3, 3, 1))  # scaled units
    calibrated = registry.register_version(
        root,
        str(model_file),
        windows,
        {"intervals": {"quantiles": LEVELS, "offsets": {"model": shifts.tolist()}}},
        {"flow_run_id": "another run"},
    )
    before = champion_predictions(root, plain)
    after = champion_predictions(root, calibrated)
    assert list(before.columns[-4:]) == ["y", *COLUMNS]
    bands = before[COLUMNS].to_numpy()
    assert (np.diff(bands, axis=1) > 0).all()  # a fresh head: softplus gaps, never zero
    np.testing.assert_allclose(before["y_q0.5"], before["y"], rtol=1e-6)  # median = point
    np.testing.assert_allclose(
        after[COLUMNS].to_numpy() - bands,
        np.broadcast_to(np.array([-1.0, 0.0, 2.0]) * STD, bands.shape),
        atol=1e-3,
    )
    np.testing.assert_allclose(after["y"], before["y"])  # the point forecast is untouched


def test_a_baseline_champion_predicts_its_empirical_interval(tmp_path: Path, windows: str) -> None:
    offsets = np.array([-0.5, 0.0, 0.25])[:, None, None] * np.arange(1, 4)[None, :, None]
    metrics = {"intervals": {"quantiles": LEVELS, "offsets": {"last_value": offsets.tolist()}}}
    root = str(tmp_path / "pipe")
    version = registry.register_version(
        root, None, windows, metrics, {}, kind="last_value", params={}
    )
    frame = champion_predictions(root, version)
    assert list(frame.columns[-4:]) == ["y", *COLUMNS]
    # Series s0 ends at 9, s1 at 1009: step h's interval is the last value plus h times
    # [-0.5, 0, 0.25] standard deviations.
    expected = frame["y"].to_numpy()[:, None] + np.outer(
        frame["step"], [-0.5 * STD, 0.0, 0.25 * STD]
    )
    np.testing.assert_allclose(frame[COLUMNS].to_numpy(), expected)
    # A version evaluated before intervals existed predicts its point forecast only.
    older = registry.register_version(
        root, None, windows, {}, {"flow_run_id": "old"}, kind="last_value", params={}
    )
    assert "y_q0.1" not in champion_predictions(root, older).columns
