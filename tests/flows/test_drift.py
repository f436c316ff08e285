"""Input drift in the prediction flow (issue 17): one training run, then predictions on the
inputs it trained on (no event) and on inputs with a feature shifted by several standard
deviations (`seqcast.input.drifted`, naming the feature)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect import flow
from prefect.events.clients import AssertingPassthroughEventsClient
from prefect.events.schemas.events import Event
from prefect.events.worker import EventsWorker

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.config import PipelineConfig
from seqcast.data.sample import load_series, write_csv_per_series
from seqcast.monitoring import drift
from seqcast.records import DriftRef, PredictionsRef, ValidatedRef
from seqcast.serving import registry
from tasks.drift import check_input_drift
from tasks.events import INPUT_DRIFTED
from tests.conftest import tiny_config
from tests.flows.test_trust import read_artifacts

pytestmark = pytest.mark.flow

SMALL = {"model__epochs": 2, "model__units": [4]}
"""A tiny network: these tests are about its inputs, not its forecasts."""


@dataclass(frozen=True)
class Trained:
    config: PipelineConfig
    frame: pd.DataFrame
    base: Path

    def config_for(self, frame: pd.DataFrame, tag: str) -> PipelineConfig:
        """The same pipeline (its champion) reading ``frame`` as its source."""
        source = self.base / tag
        write_csv_per_series(frame, "sensor", source)
        return tiny_config(source, self.base / "root", **SMALL)


def steady(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a temperature that keeps its distribution (a daily cycle and noise).
    The sample's slow AR(1) weather really does drift: its last day, all a network champion
    reads, is far from the training days (PSI 0.7), and that is not this test's shift."""
    hours = frame.groupby("sensor").cumcount().to_numpy()
    noise = np.random.default_rng(0).normal(0.0, 1.0, len(frame))
    daily = 4.0 * np.sin(2 * np.pi * (hours % 24) / 24 - 2.0)
    return frame.assign(temperature=(10.0 + daily + noise).round(3))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One training run the module's predictions share."""
    base = tmp_path_factory.mktemp("drift")
    frame = steady(load_series(n_series=3, n_steps=24 * 10, seed=1))
    write_csv_per_series(frame, "sensor", base / "source")
    config = tiny_config(base / "source", base / "root", **SMALL)
    nightly_training(config)
    return Trained(config, frame, base)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsWorker]:
    """Every event the test's flows emit, recorded and still sent to the test API: Prefect's
    own `asserting_and_emitting_events_worker` fixture, which its test suite uses."""
    worker = EventsWorker.instance(AssertingPassthroughEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    try:
        yield worker
    finally:
        worker.drain()


def emitted(worker: EventsWorker, name: str) -> list[Event]:
    worker.wait_until_empty()
    client = worker._client
    assert isinstance(client, AssertingPassthroughEventsClient)
    return [event for event in client.events if event.event == name]


def drift_table(flow_run_id: object) -> dict[str, dict[str, object]]:
    artifact = read_artifacts(flow_run_id)["tiny-input-drift"]
    assert artifact.type == "table"  # type: ignore[attr-defined]
    rows = json.loads(artifact.data)  # type: ignore[attr-defined]
    return {row["check"]: row for row in rows}


def test_every_version_keeps_its_training_profile(trained: Trained) -> None:
    root = trained.config.pipeline_root
    for row in registry.list_versions(root):
        stored = registry.read_profile(root, row["version"])
        assert stored is not None
        profile = drift.Profile.from_json(stored)
        assert set(profile.features) == {"load", "temperature"} and profile.scope == "train"
        # the time split's training rows: floor((1 - 0.2 - 0.15) * 240) of each series
        assert profile.series == {f"sensor-{i}": 156 for i in (1, 2, 3)}


def test_unshifted_inputs_emit_no_drift_event(trained: Trained, events: EventsWorker) -> None:
    state = batch_predict(trained.config, return_state=True)
    assert state.is_completed()
    table = drift_table(state.state_details.flow_run_id)
    assert set(table) == {"load", "temperature", "unseen series"}
    assert not any(row["drifted"] for row in table.values())
    assert emitted(events, INPUT_DRIFTED) == []


def test_shifted_feature_emits_a_drift_event_naming_it(
    trained: Trained, events: EventsWorker
) -> None:
    shifted = trained.frame.copy()
    shifted["temperature"] += 5 * trained.frame["temperature"].std()
    config = trained.config_for(shifted, "shifted")
    state = batch_predict(config, return_state=True)
    assert state.is_completed()
    table = drift_table(state.state_details.flow_run_id)
    assert table["temperature"]["drifted"] and table["temperature"]["ks"] > 0.9
    [event] = emitted(events, INPUT_DRIFTED)
    version = registry.champion_version(config.pipeline_root)
    assert event.resource.id == "seqcast.pipeline.tiny"
    assert event.payload["version"] == version
    assert "temperature" in event.payload["drifted_features"]
    assert event.payload["features"]["temperature"]["psi"] > config.monitor.drift_psi
    assert event.payload["unseen_share"] == 0.0


def test_drift_check_is_skipped_when_off_and_never_fails_the_run(
    trained: Trained, events: EventsWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """``monitor.enabled: false`` skips the check; a check that fails (here its input
    table is gone) is a warning, and the flow that called it completes."""
    config = trained.config
    version = registry.required_champion_version(config.pipeline_root)
    predictions = PredictionsRef(uri="unused", rows=0, model_version=version)
    gone = ValidatedRef(
        uri=str(trained.base / "gone.parquet"), rows=1, fingerprint="0" * 64, series=1
    )
    off = config.model_copy(
        update={"monitor": config.monitor.model_copy(update={"enabled": False})}
    )

    @flow
    def probe() -> tuple[DriftRef | None, DriftRef | None]:
        return check_input_drift(off, gone, predictions), check_input_drift(
            config, gone, predictions
        )

    state = probe(return_state=True)
    assert state.is_completed() and state.result() == (None, None)
    assert "Monitoring disabled (monitor.enabled: false)" in caplog.text
    assert "Input drift check failed (FileNotFoundError" in caplog.text
    assert "tiny-input-drift" not in read_artifacts(state.state_details.flow_run_id)
    assert emitted(events, INPUT_DRIFTED) == []
