"""A champion every night: when no network beats the baselines, the best statistical
challenger is registered, promoted and served, and every version keeps its test forecasts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli.models import models_app
from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.config import config_from_dict
from seqcast.data import sample as sample_data
from seqcast.io import storage
from seqcast.serving import registry

pytestmark = pytest.mark.flow


def test_last_value_is_champion_and_served_when_no_network_wins(tmp_path: Path) -> None:
    frame = sample_data.random_walk_series(n_series=2, n_steps=240)  # a stock price
    source = tmp_path / "walks.csv"
    frame.to_csv(source, index=False)
    settings = {
        "name": "walks",
        "data_root": str(tmp_path / "root"),
        "source": {"path": str(source), "series_id": "series", "target": ["value"]},
        "window": {"lookback": 10, "horizon": 3},
        # A yearly-like season longer than the lookback: read from history beyond the window.
        "evaluate": {"season": 30, "promotion_margin": 0.05},
        "model": {"units": [2], "epochs": 1, "batch_size": 64},
    }
    config = config_from_dict(settings)
    outcome = nightly_training(config)
    version = outcome.version
    assert version.winner == "last_value", version.reason
    assert not version.promoted and "no network beat" in version.reason
    assert version.statistical is not None and version.statistical.kind == "last_value"
    assert version.statistical.promoted
    champion = registry.champion_version(config.pipeline_root)
    assert champion == version.statistical.version == version.champion
    kinds = {r["version"]: r["kind"] for r in registry.list_versions(config.pipeline_root)}
    assert kinds == {version.version: "network", champion: "last_value"}

    # Every version keeps its test forecasts; `model` reproduces metrics.json's model MAE.
    metrics = storage.read_json(outcome.evaluation.metrics_uri)
    for kept in (version.uri, version.statistical.uri):
        tests = pd.read_parquet(Path(kept) / registry.FORECASTS_FILE)
        assert list(tests.columns[:5]) == ["series", "origin", "step", "target", "actual"]
        assert set(tests.columns[5:]) == {"model", "last_value", "seasonal_naive_30", "ets", "ar"}
        assert len(tests) == metrics["test_windows"] * 3
        for predictor in ("model", "last_value", "seasonal_naive_30", "ets", "ar"):
            mae = (tests[predictor] - tests["actual"]).abs().mean()
            assert mae == pytest.approx(metrics["scores"][predictor]["mae"], rel=1e-5)
        origin = tests["origin"].iloc[0]
        history = frame[(frame["series"] == tests["series"].iloc[0]) & (frame["ts"] <= origin)]
        assert tests["last_value"].iloc[0] == pytest.approx(history["value"].iloc[-1], abs=1e-3)

    config_file = tmp_path / "walks.yaml"
    config_file.write_text(yaml.safe_dump(settings))
    shown = CliRunner().invoke(
        models_app, ["show", champion, "--config", str(config_file), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["kind"] == "last_value" and document["champion"]
    assert Path(document["test_forecasts"]).is_file()
    listed = CliRunner().invoke(models_app, ["list", "--config", str(config_file)])
    assert listed.exit_code == 0, listed.output
    assert f"* {champion}  last_value" in listed.output
    assert "champion is last_value: no network or other challenger beat it" in listed.output

    predictions = pd.read_parquet(batch_predict(config).uri)
    assert (predictions["model_kind"] == "last_value").all()
    assert (predictions["model_version"] == champion).all()
    last = frame.groupby("series")["value"].last()
    assert (predictions["value"] == predictions["series"].map(last)).all()
    # Issue 16: its interval is the last value plus the run's validation residual
    # quantiles per step (stored with the version), in each series' own spread.
    stored = registry.load_champion(config.pipeline_root)
    offsets = np.asarray(stored.metrics["intervals"]["offsets"]["last_value"])  # (3, 3, 1)
    for series, rows in predictions.groupby("series"):
        spread = stored.scaler.stats_for(str(series))[1][0]
        np.testing.assert_allclose(
            rows[["value_q0.1", "value_q0.5", "value_q0.9"]].to_numpy() - last[series],
            offsets[:, :, 0].T * spread,
            rtol=1e-5,
            atol=1e-6,
        )
    assert predictions.groupby("series")["step"].apply(list).tolist() == [[1, 2, 3]] * 2
