"""A nightly retrain nobody has to babysit: it promotes only real improvements, publishes
what it did in the UI, and never serves a tampered model."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.config import config_from_dict
from seqcast.data import sample as sample_data
from seqcast.errors import RegistryError
from seqcast.serving import registry
from tests.conftest import tiny_config

pytestmark = pytest.mark.flow


def kind_config(frame: pd.DataFrame, tmp_path: Path, name: str):  # type: ignore[no-untyped-def]
    source = tmp_path / name
    source.mkdir()
    frame.to_csv(source / "data.csv", index=False)
    return config_from_dict(
        {
            "name": name,
            "data_root": str(tmp_path / "root"),
            "source": {
                "path": str(source / "data.csv"),
                "series_id": "series",
                "target": ["value"],
            },
            "window": {"lookback": 28, "horizon": 7},  # normalize: auto
            "evaluate": {"season": 7},
            "model": {
                "units": [16],
                "epochs": 20,
                "batch_size": 64,
                "learning_rate": 0.005,
                "patience": 3,
                "search": {"enabled": False},
            },
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("generator", "naive_wins"),
    [
        (sample_data.trending_series, False),
        (sample_data.level_shift_series, False),
        (sample_data.random_walk_series, True),
    ],
)
def test_the_champion_is_whatever_beats_the_naive_forecasts(
    generator,
    naive_wins: bool,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    config = kind_config(generator(), tmp_path, generator.__name__.replace("_", "-"))
    outcome = nightly_training(config)
    evaluation, version = outcome.evaluation, outcome.version
    assert set(evaluation.baselines) == {"last_value", "seasonal_naive_7", "ets", "ar"}
    champion = registry.champion_version(config.pipeline_root)
    assert champion is not None and champion == version.champion  # always a champion
    beats_all = evaluation.challenger < 0.99 * min(evaluation.baselines.values())
    assert version.promoted is beats_all, version.reason  # the network only if it won
    if version.promoted:
        assert champion == version.version and version.winner == "network"
    else:
        assert "no network beat" in version.reason and version.statistical is not None
        assert champion == version.statistical.version
    if naive_wins:
        # Nothing beats the last value on a random walk: it is the champion, said plainly.
        assert version.winner == "last_value"
    else:
        assert version.winner in ("network", "ets", "ar", "seasonal_naive")


def read_artifacts(flow_run_id: object) -> dict[str, object]:
    async def read() -> dict[str, object]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
        return {a.key or f"{a.type}-{a.id}": a for a in artifacts}

    return asyncio.run(read())


def test_run_publishes_progress_metrics_and_report(tiny_load_csv: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_load_csv, tmp_path / "root", window__normalize="window")
    state = nightly_training(config, return_state=True)
    artifacts = read_artifacts(state.state_details.flow_run_id)
    progress = [a for a in artifacts.values() if a.type == "progress"]
    assert len(progress) == 1 and float(progress[0].data) == 100.0
    table = artifacts["tiny-metrics"]
    assert table.type == "table" and "last_value" in str(table.data)
    report = artifacts["tiny-report"]
    assert report.type == "markdown"
    assert "| model |" in report.data and report.data.count("data:image/png;base64,") == 2
    assert artifacts["tiny-validation"].type == "table"


def test_tampered_champion_is_refused_and_predictions_untouched(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    config = tiny_config(tiny_load_csv, tmp_path / "root", window__normalize="window")
    outcome = nightly_training(config)
    assert outcome.version.promoted
    first = Path(batch_predict(config).uri)
    before = {p: p.stat().st_mtime_ns for p in first.parent.iterdir()}
    model_file = Path(outcome.version.uri) / registry.MODEL_FILE
    with model_file.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RegistryError, match="does not match its manifest"):
        batch_predict(config, force=True)  # same logical date: force a fresh prediction
    assert {p: p.stat().st_mtime_ns for p in first.parent.iterdir()} == before
    assert os.path.getsize(first) > 0
