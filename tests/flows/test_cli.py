"""The `seqcast` CLI: a user's own single-series CSV with only a config file, JSON listing,
short errors, and the demo pipeline beating the last-value baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from seqcast.data.sample import load_series

pytestmark = pytest.mark.flow
REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `seqcast ARGS` as a user would, against the session's test Prefect API."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    result.output = result.stdout + result.stderr  # type: ignore[attr-defined]
    return result


def test_single_series_csv_with_only_a_config(tmp_path: Path) -> None:
    # One series, no series column, naive timestamps in a space-separated format.
    frame = load_series(n_series=1, n_steps=24 * 12, seed=5).drop(columns="sensor")
    frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%d %H:%M")
    csv = tmp_path / "meter.csv"
    frame.rename(columns={"ts": "time", "load": "kwh", "temperature": "temp"}).to_csv(
        csv, index=False
    )
    config = tmp_path / "meter.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "meter",
                "data_root": str(tmp_path / "root"),
                "source": {
                    "path": str(csv),
                    "timestamp": "time",
                    "target": ["kwh"],
                    "features": ["temp"],
                    "timezone": "Europe/Paris",
                },
                "window": {"lookback": 24, "horizon": 12},
                "model": {
                    "units": [16],
                    "epochs": 5,
                    "learning_rate": 0.01,
                    "search": {"enabled": False},
                },
            }
        )
    )
    trained = invoke("train", "--config", str(config), "--set", "model.cell=gru")
    assert trained.returncode == 0, trained.output
    assert "predictor" in trained.output and "last_value" in trained.output
    listed = invoke("models", "list", "--config", str(config), "--json")
    versions = json.loads(listed.stdout)
    # The GRU's version, and beside it the statistical winner's when the GRU lost the night
    # (hourly data: a seasonal ETS, season 24 from the frequency); one is champion.
    network = next(v for v in versions if v["kind"] == "network")
    assert network["metrics"]["scores"]["model"]["mae"] > 0
    assert set(network["metrics"]["scores"]) >= {"model", "last_value", "ets"}
    assert len(versions) == (1 if network["champion"] else 2), trained.output
    assert sum(bool(v["champion"]) for v in versions) == 1, trained.output
    predicted = invoke("predict", "--config", str(config))
    assert predicted.returncode == 0, predicted.output
    out = pd.read_parquet(next((tmp_path / "root/meter/predictions").rglob("*.parquet")))
    assert len(out) == 12 and out["kwh"].notna().all()
    # Naive local times were read in Europe/Paris (UTC+1 in January) and written in UTC.
    last_local = pd.Timestamp(frame["ts"].iloc[-1], tz="Europe/Paris")
    assert out["origin"].iloc[0] == last_local.tz_convert("UTC")


def test_errors_are_short_and_exit_one(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump({"name": "x", "source": {"path": "x.csv", "target": ["y"]}, "modle": {}})
    )
    result = invoke("train", "--config", str(config))
    assert result.returncode == 1
    assert "modle: unknown key" in result.output and "Traceback" not in result.output
    missing = tmp_path / "ok.yaml"
    missing.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "data_root": str(tmp_path),
                "source": {"path": str(tmp_path / "nope/*.csv"), "target": ["y"]},
            }
        )
    )
    result = invoke("train", "--config", str(missing))
    assert result.returncode == 1 and "matches no files" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_demo_lstm_beats_the_naive_baselines_and_the_best_is_champion(tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "configs/sample-load.yaml").read_text())
    assert invoke("sample", "--out", str(tmp_path / "sample")).returncode == 0
    demo["source"]["path"] = str(tmp_path / "sample/load/*.csv")
    demo["data_root"] = str(tmp_path / "root")
    demo["contract"] = str(REPO / "schemas/sample-load.yaml")
    demo["model"]["search"] = {"trials": 2}  # the configured model's two variants only
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(demo))
    result = invoke("train", "--config", str(config))
    assert result.returncode == 0, result.output
    listed = json.loads(invoke("models", "list", "--config", str(config), "--json").stdout)
    scores = listed[0]["metrics"]["scores"]
    assert scores["model"]["mae"] < scores["last_value"]["mae"]
    assert scores["model"]["mae"] < scores["seasonal_naive_24"]["mae"]
    # The champion is whichever predictor won: the network, or ETS where it beats the network.
    (champion,) = [row for row in listed if row["champion"]]
    assert champion["kind"] == ("network" if listed[0]["champion"] else "ets")
    assert scores[champion["predictor"]]["mae"] <= scores["model"]["mae"]
    assert f"tonight's winner: {champion['kind']}" in result.output
    assert np.isfinite(scores["model"]["rmse"])
