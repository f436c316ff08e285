"""Statistical versions (last_value, seasonal_naive, ets, ar) go through the registry like networks:
verified, refused when tampered with, listed with their kind, promoted and rolled back, and
served by batch prediction from each series' history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.errors import DataContractError, RegistryError
from seqcast.io import storage
from seqcast.serving import registry
from seqcast.serving.prediction import predict_frame
from seqcast.windows.scaling import Scaler, Stats
from tests.conftest import arithmetic_frame, forecast_layout

LAYOUT = forecast_layout(lookback=4, horizon=3)


@pytest.fixture
def windows(tmp_path: Path) -> str:
    """A windows directory holding a scaler and a layout (all a statistical version copies)."""
    uri = str(tmp_path / "windows")
    storage.write_json(
        storage.join(uri, "scaler.json"), Scaler("global", ["y"], Stats([0.0], [1.0])).to_json()
    )
    storage.write_json(storage.join(uri, "layout.json"), dataclasses.asdict(LAYOUT))
    return uri


def register(root: str, windows: str, kind: str, **params: object) -> str:
    metrics = {"primary_metric": "mae", "scores": {"model": {"mae": 2.0}, kind: {"mae": 1.0}}}
    return registry.register_version(
        root, None, windows, metrics, {"predictor": kind}, kind=kind, params=params
    )


def test_statistical_versions_verify_list_promote_and_roll_back(
    tmp_path: Path, windows: str
) -> None:
    root = str(tmp_path / "pipe")
    last = register(root, windows, "last_value")
    seasonal = register(root, windows, "seasonal_naive", season=24)
    for version in (last, seasonal):
        manifest = registry.verify_version(root, version)
        assert registry.MODEL_FILE not in manifest["sha256"]
        assert registry.PARAMS_FILE in manifest["sha256"]
        registry.set_champion(root, version, {"reason": "test"})
    loaded = registry.load_champion(root)
    assert (loaded.kind, loaded.params, loaded.model) == ("seasonal_naive", {"season": 24}, None)
    rows = registry.list_versions(root)
    assert [(r["version"], r["kind"], r["champion"]) for r in rows] == [
        (last, "last_value", False),
        (seasonal, "seasonal_naive", True),
    ]
    assert registry.rollback(root) == last
    assert registry.load_champion(root).kind == "last_value"


def test_a_tampered_statistical_version_is_refused(tmp_path: Path, windows: str) -> None:
    root = str(tmp_path / "pipe")
    version = register(root, windows, "seasonal_naive", season=24)
    params = Path(registry.version_uri(root, version)) / registry.PARAMS_FILE
    params.write_text(params.read_text().replace("24", "1"))
    with pytest.raises(RegistryError, match="params.json does not match its manifest"):
        registry.load_version(root, version)


def test_a_manifest_without_its_kinds_payload_is_refused(tmp_path: Path, windows: str) -> None:
    root = str(tmp_path / "pipe")
    version = register(root, windows, "last_value")
    manifest_file = Path(registry.version_uri(root, version)) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["kind"] = "network"  # claims a model.keras it does not have
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="lists no model.keras"):
        registry.load_version(root, version)
    manifest["kind"] = "oracle"
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="unknown kind 'oracle'"):
        registry.load_version(root, version)


def test_a_version_needs_the_payload_of_its_kind(tmp_path: Path, windows: str) -> None:
    with pytest.raises(ValueError, match="params and no model file"):
        registry.register_version(str(tmp_path), "model.keras", windows, {}, {}, kind="ets")
    with pytest.raises(ValueError, match="a model file"):
        registry.register_version(str(tmp_path), None, windows, {}, {})


def frame(n_steps: int) -> pd.DataFrame:
    return arithmetic_frame(n_series=2, n_steps=n_steps)  # series s holds 1000*s + t at step t


def test_last_value_and_seasonal_naive_are_served_from_history(
    tmp_path: Path, windows: str
) -> None:
    root = str(tmp_path / "pipe")
    last = registry.load_version(root, register(root, windows, "last_value"))
    # A season (10) longer than the lookback (4): read from rows before the input window.
    seasonal = registry.load_version(root, register(root, windows, "seasonal_naive", season=10))
    data = frame(30)
    served = predict_frame(data, last)
    assert served["y"].tolist() == [29.0] * 3 + [1029.0] * 3
    served = predict_frame(data, seasonal)
    assert served["y"].tolist() == [20.0, 21.0, 22.0, 1020.0, 1021.0, 1022.0]
    assert served["step"].tolist() == [1, 2, 3] * 2
    last_seen = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=29)
    assert (served["origin"] == last_seen).all()
    assert served["ts"].tolist()[:3] == [last_seen + pd.Timedelta(hours=h) for h in (1, 2, 3)]
    with pytest.raises(DataContractError, match="last 10 steps"):
        predict_frame(frame(8), seasonal)


def test_a_season_shorter_than_the_horizon_repeats() -> None:
    from seqcast.serving.registry import LoadedModel

    champion = LoadedModel(
        version="v",
        model=None,
        scaler=Scaler("global", ["y"], Stats([0.0], [1.0])),
        layout=forecast_layout(lookback=4, horizon=5),
        metrics={},
        kind="seasonal_naive",
        params={"season": 2},
    )
    served = predict_frame(frame(6).query("id == 's0'"), champion)
    assert np.array_equal(served["y"].to_numpy(), [4.0, 5.0, 4.0, 5.0, 4.0])


def test_an_ets_champion_is_served_with_its_fits(tmp_path: Path, windows: str) -> None:
    from seqcast.modeling.statistical import fit_ets

    data = frame(60)  # two straight lines: 1000*s + t
    fits = {
        "s0": {"y": fit_ets(np.arange(40, dtype=np.float64), None).to_json()},
    }  # s1 was never fitted: it gets its last value
    root = str(tmp_path / "pipe")
    champion = registry.load_version(root, register(root, windows, "ets", season=None, fits=fits))
    assert champion.kind == "ets" and champion.params["fits"] == fits
    served = predict_frame(data, champion)
    np.testing.assert_allclose(served["y"].to_numpy()[:3], [60.0, 61.0, 62.0], atol=0.5)
    assert served["y"].tolist()[3:] == [1059.0] * 3


def test_an_ar_champion_applies_its_coefficients_to_the_latest_values(
    tmp_path: Path, windows: str
) -> None:
    from seqcast.modeling.autoregressive import ArFit
    from seqcast.serving.prediction import prediction_scope

    data = frame(30)  # two straight lines: 1000*s + t
    # y[t] = 2 y[t-1] - y[t-2] continues a straight line; + 1 bends it up by 1, 3, 6.
    fits = {"s0": {"y": ArFit(intercept=1.0, coefficients=[2.0, -1.0]).to_json()}}
    root = str(tmp_path / "pipe")
    champion = registry.load_version(root, register(root, windows, "ar", fits=fits))
    assert champion.kind == "ar" and champion.params["fits"] == fits
    served = predict_frame(data, champion)
    np.testing.assert_allclose(served["y"].to_numpy()[:3], [31.0, 34.0, 38.0])
    assert served["y"].tolist()[3:] == [1029.0] * 3  # s1 was never fitted: its last value
    # An order longer than the lookback (4) reads that many rows.
    long = {"s0": {"y": ArFit(0.0, [0.0] * 9 + [1.0]).to_json()}}
    assert prediction_scope("ar", LAYOUT, {"fits": long}).rows == 10


def test_an_ar_champion_is_scored_as_the_run_s_ar_and_refused_when_the_run_fits_none() -> None:
    from seqcast.serving.registry import LoadedModel
    from tasks.evaluate import champion_forecaster

    champion = LoadedModel(
        version="v-ar",
        model=None,
        scaler=Scaler("global", ["y"], Stats([0.0], [1.0])),
        layout=LAYOUT,
        metrics={},
        kind="ar",
        params={"fits": {}},
    )
    _, extra = champion_forecaster(champion, LAYOUT, champion.scaler, None, ["ets", "ar"])
    assert extra == []
    with pytest.raises(RegistryError, match=r"kind 'ar'.*add ar to evaluate\.challengers"):
        champion_forecaster(champion, LAYOUT, champion.scaler, None, ["ets"])
