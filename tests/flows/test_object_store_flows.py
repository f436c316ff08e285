"""The training flow then the prediction flow with the data root on an object store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.io import storage
from seqcast.serving import registry
from tests.conftest import tiny_config
from tests.object_store import every_file

pytestmark = pytest.mark.flow


def test_training_then_prediction_on_an_object_store(
    object_root: str,
    tiny_load_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The source files live on the store too: every read goes through fsspec.
    source = storage.join(object_root, "source")
    for csv in sorted(tiny_load_csv.glob("*.csv")):
        storage.write_bytes(storage.join(source, csv.name), csv.read_bytes())
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # a relative local path written by mistake would land here
    config = tiny_config(
        tiny_load_csv,
        object_root,  # type: ignore[arg-type]
        source__path=f"{source}/*.csv",
        model__units=[8],
        model__epochs=2,
    )
    assert config.pipeline_root == f"{object_root}/tiny"

    outcome = nightly_training(config)
    # The champion is the night's winner: the network, or a statistical challenger (ETS
    # often beats so small a network); either is a version on the object store.
    winner = outcome.version if outcome.version.promoted else outcome.version.statistical
    assert winner is not None, outcome.version.reason
    version = winner.version
    assert winner.uri == registry.version_uri(config.pipeline_root, version)
    assert registry.champion_version(config.pipeline_root) == version == outcome.version.champion
    listed = [v["version"] for v in registry.list_versions(config.pipeline_root)]
    assert listed == sorted({outcome.version.version, version})
    loaded = registry.load_champion(config.pipeline_root)  # checks every sha256 first
    assert loaded.version == version and loaded.kind == winner.kind
    if loaded.model is not None:
        assert loaded.model.output_shape[1] == config.window.horizon

    predictions = batch_predict(config)
    assert predictions.uri.startswith(f"{config.pipeline_root}/predictions/date=")
    frame = storage.read_parquet(predictions.uri).to_pandas()
    assert len(frame) == predictions.rows == 3 * config.window.horizon
    sensors = {pd.read_csv(csv)["sensor"].iloc[0] for csv in tiny_load_csv.glob("*.csv")}
    assert set(frame["sensor"]) == sensors and len(sensors) == 3
    assert (frame["model_version"] == version).all()
    assert (frame["model_kind"] == winner.kind).all()
    last_seen = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=24 * 10 - 1)
    assert (frame["origin"] == last_seen).all()

    written = every_file(config.pipeline_root)
    for part in ("raw/", "validated/", "windows/current.json", "registry/champion.json"):
        assert any(f.startswith(part) for f in written), f"nothing under {part}: {written}"
    assert not [f for f in written if ".tmp-" in f or ".staging-" in f]
    assert list(workdir.iterdir()) == []  # nothing landed on the local disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source", "workdir"]
