"""The `seqcast` CLI: a user's own single-series CSV with only a config file, JSON listing,
short errors, and the demo pipeline beating the last-value baseline."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.settings import PREFECT_API_URL

from seqcast.data.sample import load_series
from tests.conftest import run_cli, tiny_config

pytestmark = pytest.mark.flow
REPO = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `seqcast ARGS` as a user would, against the session's test Prefect API."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    return run_cli(*args, env=env, timeout=600)


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
    # Issue 14 #6: once, not four times (task failed, flow exception, flow failed, error:);
    # the run log on the API keeps the engine's reports.
    assert result.output.count("matches no files") == 1, result.output
    assert result.stderr.startswith("error: ") or "\nerror: source.path" in result.stderr


NOISE = ("absl::InitializeLog", "oneDNN", "retracing", "cpu_feature_guard", "DO_NOT_TRACK")


@pytest.mark.slow
def test_demo_lstm_beats_the_naive_baselines_and_the_best_is_champion(tmp_path: Path) -> None:
    demo = yaml.safe_load((REPO / "configs/sample-load.yaml").read_text())
    assert invoke("sample", "--out", str(tmp_path / "sample")).returncode == 0
    demo["source"]["path"] = str(tmp_path / "sample/load/*.csv")
    demo["data_root"] = str(tmp_path / "root")
    demo["contract"] = str(REPO / "schemas/sample-load.yaml")
    # The search's first trial only: the configured LSTM, series-scaled (`make demo` runs
    # four; each is up to 20 epochs of LSTM(64) on the demo data). The baselines it must beat
    # are far behind (the README's demo: MAE 15.03 and 35.76, the best network 9.18).
    demo["model"]["search"] = {"trials": 1}
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


def test_a_killed_train_resumes_at_its_checkpointed_epoch(
    tmp_path: Path, tiny_load_csv: Path
) -> None:
    """A killed `train` resumes; the rerun, then `validate` and `predict`, print JSON and no
    TensorFlow noise. One pipeline for both issues: the rerun is the `train --json`."""
    # Issue 13 #15: the checkpoint was keyed by the flow run id, which no later CLI run
    # has, so a killed `seqcast train` always started over. Now a re-run of the same config
    # on the same day and data resumes at the last checkpointed epoch.
    root = tmp_path / "root"
    # Enough epochs that the first run is still training when the test sees its first
    # checkpoint (it polls every 50 ms; an epoch takes far longer), few enough that the
    # rerun's remaining epochs take seconds.
    config = tiny_config(
        tiny_load_csv,
        root,
        model__epochs=12,
        model__patience=12,
        window__normalize="series",
        runner__series_per_shard=1,  # three prediction shards, one model load
    )
    path = tmp_path / "tiny.json"
    path.write_text(config.model_dump_json())
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    command = [sys.executable, "-m", "flows.cli.main", "train", "--config", str(path)]
    first = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = root / "tiny/checkpoints"
    try:
        deadline = time.monotonic() + 600  # generous: a loaded machine, not a time limit
        while first.poll() is None and time.monotonic() < deadline:
            if next(root.rglob("checkpoints/*/epoch-*.npz"), None):  # an epoch is saved
                first.kill()
                break
            time.sleep(0.05)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, "killed after its first checkpoint"
    trained = invoke("train", "--config", str(path), "--json")
    assert trained.returncode == 0, trained.output
    resumed = re.search(r"Resumed from the checkpoint of epoch (\d+)", trained.output)
    assert resumed is not None and int(resumed.group(1)) >= 1, trained.output
    assert not [p for p in checkpoints.iterdir()], "a finished run removes its checkpoint"

    # Issue 14 #11: `--json` on train, validate and predict; #7: TensorFlow's start-up lines
    # and retracing warnings (a model load per prediction shard) stay off the console.
    result = json.loads(trained.stdout)
    assert result["pipeline"] == "tiny" and result["primary_metric"] == "mae"
    network = result["versions"][0]  # trained, evaluated and registered
    assert network["kind"] == "network" and isinstance(network["promoted"], bool)
    assert network["reason"] and Path(network["uri"]).is_dir()
    assert result["champion"] in {v["version"] for v in result["versions"]}
    assert set(result["metrics"]) >= {"model", "last_value"}
    assert Path(result["metrics_uri"]).is_file()
    assert re.search(r"epoch \d+/12", trained.stderr)  # the library's INFO lines as well

    validated = invoke("validate", "--config", str(path), "--json")
    assert validated.returncode == 0, validated.output
    report = json.loads(validated.stdout)
    assert report["outcome"] == "pass" and report["series"] == 3 and report["quarantined"] == 0
    assert Path(report["report_uri"]).is_file() and report["rules"]

    predicted = invoke("predict", "--config", str(path), "--json")
    assert predicted.returncode == 0, predicted.output
    out = json.loads(predicted.stdout)
    assert out["model_version"] == result["champion"] and out["rows"] == 3 * 6
    assert len(pd.read_parquet(out["predictions_uri"])) == out["rows"]

    for done in (trained, validated, predicted):
        assert not [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)]
    assert "seqcast train` first" not in trained.stderr
