"""The backtest in the nightly flow: mapped fold tasks, a spread table, cached folds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.training import nightly_training
from tests.conftest import tiny_config
from tests.flows.test_pipeline import task_run_states
from tests.flows.test_trust import read_artifacts

pytestmark = pytest.mark.flow


def test_backtest_folds_run_as_tasks_and_publish_their_spread(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    config = tiny_config(
        tiny_load_csv,
        tmp_path / "root",
        model__epochs=2,
        evaluate__season=24,
        evaluate__backtest_folds=2,
        evaluate__backtest_steps=24,
    )
    state = nightly_training(config, return_state=True)
    outcome = state.result()
    run_id = state.state_details.flow_run_id
    states = task_run_states(run_id)
    assert {"backtest-plan", "backtest-fold", "backtest-summary"} <= set(states)
    assert set(states.values()) == {"COMPLETED"}
    backtest = outcome.backtest
    assert [f.fold for f in backtest.folds] == [1, 2]
    # The sample data ends on 2024-01-10 23:00: the folds are its last two whole days.
    assert [(f.test_from[:10], f.until[:10]) for f in backtest.folds] == [
        ("2024-01-09", "2024-01-10"),
        ("2024-01-10", "2024-01-11"),
    ]
    assert not any(f.cached for f in backtest.folds)
    assert "seasonal_naive_24" in backtest.folds[0].baselines
    table = read_artifacts(run_id)["tiny-backtest"]
    rows = json.loads(table.data)
    assert [r["fold"] for r in rows] == ["1", "2", "mean", "std"]
    assert rows[2]["model"] == pytest.approx(backtest.model_mean, abs=1e-4)

    again = nightly_training(config, force=True)  # same data: every fold is read back
    assert all(f.cached for f in again.backtest.folds)
    assert [f.model for f in again.backtest.folds] == [f.model for f in backtest.folds]
