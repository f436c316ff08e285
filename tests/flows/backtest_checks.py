"""The backtest in the nightly flow: a subflow of mapped fold tasks, a spread table, cached
folds. Checks, not tests: tests/flows/test_publication_slots.py runs them on its two
trainings (the backtest's first run and its rerun), so no pipeline trains twice for them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

from seqcast.records import BacktestRef
from tests.flows.test_pipeline import task_run_states
from tests.flows.test_trust import read_artifacts


def subflow_run_id(parent: object, name: str) -> object:
    async def read() -> object:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])
                )
            )
            flows = {run.id: (await client.read_flow(run.flow_id)).name for run in runs}
        return next(run_id for run_id, flow_name in flows.items() if flow_name == name)

    return asyncio.run(read())


BACKTEST = {
    "model__epochs": 2,
    "evaluate__season": 24,
    "evaluate__backtest_folds": 2,
    "evaluate__backtest_steps": 24,
}
"""`tiny_config` overrides for a backtest of two daily folds."""


def assert_folds_ran_as_tasks_and_published_their_spread(state: Any) -> BacktestRef:
    """The first nightly run of a `BACKTEST` pipeline (a fresh data root): a subflow of
    mapped fold tasks, the folds' dates and baselines, and the spread table artifact.

    Called by tests/flows/test_publication_slots.py, whose two trainings are the backtest's
    first run and its rerun: a pipeline of their own would train twice more.
    """
    outcome = state.result()
    assert task_run_states(state.state_details.flow_run_id)["backtest"] == "COMPLETED"
    run_id = subflow_run_id(state.state_details.flow_run_id, "backtest")
    states = task_run_states(run_id)
    assert set(states) == {"backtest-plan", "backtest-fold", "backtest-summary"}
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
    return backtest


def assert_folds_read_back(again: Any, backtest: BacktestRef) -> None:
    """A rerun on the same data (``again``, its outcome) reads every fold back."""
    assert all(f.cached for f in again.backtest.folds)
    assert [f.model for f in again.backtest.folds] == [f.model for f in backtest.folds]
