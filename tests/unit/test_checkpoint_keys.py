"""One checkpoint key for the train step and the search trials: pipeline, logical date,
data and settings, never the flow run.

Search trials were keyed by the flow run, which no rerun has, so a killed search started
every trial over while a killed `seqcast train` resumed. That a fit resumes from what its
checkpoint directory holds is tests/unit/test_checkpoint_faults.py's; here, that a rerun
finds the same directory.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from seqcast.config import PipelineConfig
from seqcast.modeling.search import TrialPlan
from seqcast.records import WindowsRef
from tasks import search, train
from tests.conftest import tiny_config

DAY = date(2026, 1, 3)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PipelineConfig:
    monkeypatch.setattr(train, "logical_date", lambda: DAY)
    return tiny_config(tmp_path / "source", tmp_path / "root")


def windows(fingerprint: str) -> WindowsRef:
    return WindowsRef(
        uri="unused", fingerprint=fingerprint, rows_by_split={}, n_inputs=2, n_outputs=6
    )


def plan(config: PipelineConfig, number: int = 0, **changes: object) -> TrialPlan:
    model = config.model.model_copy(update={"batch_size": 64, **changes})
    return TrialPlan(number=number, params={"units": 16}, model=model, window_relative=False)


def test_a_trial_reruns_into_the_directory_of_its_day_data_and_settings(
    config: PipelineConfig,
) -> None:
    first = search._backup_dir(config, windows("abc"), plan(config))
    # The rerun's search proposes the same trial; only the earlier trials' curves (which
    # decide pruning, not training) may differ.
    rerun = plan(config).model_copy(update={"earlier_curves": [[0.5, 0.4]]})
    assert search._backup_dir(config, windows("abc"), rerun) == first
    # Beside the train step's checkpoints, named by the day.
    assert Path(first).parent == Path(config.pipeline_root) / "checkpoints"
    assert Path(first).name.startswith(f"{DAY.isoformat()}-trial-0-")

    others = {
        search._backup_dir(config, windows("other data"), plan(config)),
        search._backup_dir(config, windows("abc"), plan(config, number=1)),
        search._backup_dir(config, windows("abc"), plan(config, learning_rate=0.5)),
    }
    assert first not in others and len(others) == 3


def test_the_train_step_and_the_trials_share_the_key(config: PipelineConfig) -> None:
    spec = config.model.model_copy(update={"batch_size": 64})
    step = train.backup_dir(config, windows("abc"), spec, 64, False)
    assert Path(step).parent == Path(config.pipeline_root) / "checkpoints"
    assert Path(step).name.startswith(f"{DAY.isoformat()}-")
    assert step != search._backup_dir(config, windows("abc"), plan(config))
    assert step != train.backup_dir(config, windows("new data"), spec, 64, False)
